"""The DCGAN recipe (issue 24): hinge loss with a spectrally normalized discriminator that a generator step leaves
alone (test_dcgan_training checks both recipes' steps; here why Keras' own wrapper would not), the bilinear image head, the cosine learning-rate schedule on both optimizers, mirrored real images, and
the legacy recipe for old checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mritune.trainables.dcgan.config import LEGACY_RECIPE, DCGANConfig
from mritune.trainables.errors import UserInputError
from tests.trainables.training_helpers import TINY_DCGAN, few_tf_threads, saved_learning_rate


@pytest.fixture(scope="module", autouse=True)
def _threads():
    few_tf_threads()


def test_label_smoothing_is_refused_for_the_hinge_loss_and_kept_for_bce():
    with pytest.raises(UserInputError, match="label_smoothing applies only to loss: bce"):
        DCGANConfig.from_dict({"label_smoothing": 0.1})
    legacy = DCGANConfig.from_dict(LEGACY_RECIPE)
    assert (legacy.loss, legacy.label_smoothing, legacy.spectral_norm) == ("bce", 0.1, False)
    with pytest.raises(UserInputError, match="image_head must be one of bilinear, transpose"):
        DCGANConfig.from_dict({"image_head": "nearest"})


def test_cosine_schedule_falls_from_the_configured_rates_and_constant_keeps_them():
    cfg = DCGANConfig.from_dict({"epochs": 4, "lr_g": 4e-4, "lr_d": 8e-4})
    rates = [cfg.learning_rates(epoch) for epoch in range(1, 5)]
    assert rates[0] == (4e-4, 8e-4)
    assert all(later[0] < earlier[0] and later[1] < earlier[1] for earlier, later in zip(rates, rates[1:]))
    assert rates[-1][0] == pytest.approx(4e-4 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))
    constant = DCGANConfig.from_dict({"epochs": 4, "lr_schedule": "constant"})
    assert {constant.learning_rates(epoch) for epoch in (1, 4)} == {(constant.lr_g, constant.lr_d)}


def test_keras_own_spectral_norm_would_move_the_frozen_discriminator():
    """Why the frozen-aware wrapper exists: Keras' wrapper re-normalizes its kernel in every training call."""
    import keras

    from mritune.trainables.layers import FrozenAwareSpectralNormalization

    x = np.random.default_rng(1).standard_normal((4, 6)).astype("float32")
    moved = {}
    for wrapper in (keras.layers.SpectralNormalization, FrozenAwareSpectralNormalization):
        layer = wrapper(keras.layers.Dense(3, kernel_initializer=keras.initializers.RandomNormal(seed=0)))
        layer(x)  # build
        layer.trainable = False
        before = [w.numpy().copy() for w in layer.weights]
        layer(x, training=True)
        moved[wrapper.__name__] = any(not np.array_equal(a, b.numpy()) for a, b in zip(before, layer.weights))
    assert moved == {"SpectralNormalization": True, "FrozenAwareSpectralNormalization": False}


def test_the_recipe_shapes_the_models_and_the_generator_file_needs_no_mritune_layers(tmp_path):
    import keras

    from mritune.trainables.dcgan.model import build_discriminator, build_generator
    from mritune.trainables.layers import FrozenAwareSpectralNormalization

    cfg = DCGANConfig.from_dict(TINY_DCGAN)
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    assert isinstance(generator.layers[-2], keras.layers.UpSampling2D) and generator.output_shape[1:] == (32, 32, 1)
    # 32 px: three strided convolutions (32 → 4) and the logit layer
    assert sum(isinstance(layer, FrozenAwareSpectralNormalization) for layer in discriminator.layers) == 4
    legacy = build_discriminator(DCGANConfig.from_dict({**TINY_DCGAN, **LEGACY_RECIPE}))
    assert not any(isinstance(layer, keras.layers.SpectralNormalization) for layer in legacy.layers)
    config = json.dumps(generator.get_config())
    assert "mritune" not in config  # deploy loads the generator where mritune is not installed


def _train(config, data, tmp_path: Path, **kwargs):
    from mritune.trainables.dcgan.training import train_dcgan

    reports = []
    train_dcgan(config, data, reports.append, workdir=str(tmp_path), **kwargs)
    return reports


def test_each_epoch_trains_at_its_scheduled_rates(tiny_dataset, tmp_path):
    config = {**TINY_DCGAN, "epochs": 2, "lr_g": 3e-4, "lr_d": 6e-4}
    reports = _train(config, tiny_dataset, tmp_path / "run", evaluate_test=False)
    expected = DCGANConfig.from_dict(config).learning_rates(2)
    folder = Path(reports[-1].checkpoint_dir)
    rates = (saved_learning_rate(folder / "generator.keras"), saved_learning_rate(folder / "discriminator.keras"))
    assert rates == pytest.approx(expected) and expected[0] < 3e-4


def test_a_checkpoint_from_before_the_recipe_resumes_only_with_the_legacy_recipe(tiny_dataset, tmp_path):
    legacy = {**TINY_DCGAN, **LEGACY_RECIPE, "batch_size": 32, "epochs": 2}
    first = _train({**legacy, "epochs": 1}, tiny_dataset, tmp_path / "old", evaluate_test=False)
    folder = Path(first[0].checkpoint_dir)
    state = json.loads((folder / "state.json").read_text())
    for key in ("loss", "spectral_norm", "image_head", "lr_schedule", "flip"):  # as a state written before them
        del state["config"][key]
    (folder / "state.json").write_text(json.dumps(state))
    with pytest.raises(UserInputError, match="checkpoint has loss='bce' but the config asks for 'hinge'"):
        _train({**TINY_DCGAN, "epochs": 2}, tiny_dataset, tmp_path / "new", resume_from=str(folder))
    resumed = _train(legacy, tiny_dataset, tmp_path / "again", resume_from=str(folder), evaluate_test=False)
    assert [report.epoch for report in resumed] == [2]


def test_mirroring_flips_about_half_of_the_images_left_right():
    from mritune.trainables.dcgan.training import _mirrored

    images = np.random.default_rng(0).uniform(-1, 1, (200, 8, 8, 1)).astype("float32")
    out = _mirrored(images, np.random.default_rng(1))
    flipped = [not np.array_equal(a, b) for a, b in zip(images, out)]
    assert all(np.array_equal(b, a[:, ::-1]) for a, b, f in zip(images, out, flipped) if f)
    assert 70 < sum(flipped) < 130
