"""train_dcgan on the tiny synthetic dataset: metrics, sample grid, the frozen-discriminator generator step,
resume, divergence (forced NaN) and the collapse rule, and the saved generator's contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mritune.trainables.dcgan.config import LEGACY_RECIPE, DCGANConfig
from mritune.trainables.reporting import TrainingDiverged
from tests.trainables.training_helpers import TINY_DCGAN, assert_finite_metrics, comparable, few_tf_threads

DCGAN_METRICS = ["epoch", "gen_loss", "disc_loss", "d_real_acc", "d_fake_acc", "swd", "ms_ssim_diversity", "fd",
                 "swd_floor", "fd_floor"]
TEST_METRICS = {"test_swd", "test_ms_ssim_diversity", "test_fd", "test_swd_floor", "test_fd_floor"}


@pytest.fixture(scope="module", autouse=True)
def _threads():
    few_tf_threads()


@pytest.fixture(scope="module")
def two_epoch_run(tiny_dataset, tmp_path_factory):
    from mritune.trainables.dcgan.training import train_dcgan

    reports = []
    config = {**TINY_DCGAN, "epochs": 2}
    result = train_dcgan(config, tiny_dataset, reports.append, workdir=str(tmp_path_factory.mktemp("gan")))
    return config, reports, result


def test_every_epoch_reports_finite_metrics_and_a_sample_grid(two_epoch_run):
    _, reports, result = two_epoch_run
    assert [r.epoch for r in reports] == [1, 2]
    for report in reports:
        assert_finite_metrics(report.metrics, DCGAN_METRICS)
        grid = report.images["samples"]
        assert grid.dtype == np.uint8 and grid.ndim == 2 and grid.shape[0] > 4 * 32
        for name in ("generator.keras", "discriminator.keras", "state.json"):
            assert (Path(report.checkpoint_dir) / name).is_file()
    assert Path(reports[-1].artifacts["samples"]).read_bytes()[:4] == b"\x89PNG"
    assert result.epochs_completed == 2 and result.model_path.endswith("generator.keras")


def test_every_epoch_reports_each_distance_above_its_constant_floor(two_epoch_run):
    _, reports, _ = two_epoch_run
    floors = {(r.metrics["swd_floor"], r.metrics["fd_floor"]) for r in reports}
    assert len(floors) == 1, "the real-vs-real floors do not change with the generator"
    for report in reports:
        assert 0 < report.metrics["swd_floor"] < report.metrics["swd"]
        assert 0 < report.metrics["fd_floor"] < report.metrics["fd"]


def test_saved_generator_contract(two_epoch_run):
    import keras

    import mritune.trainables.layers  # noqa: F401

    config, reports, result = two_epoch_run
    state = json.loads((Path(reports[-1].checkpoint_dir) / "state.json").read_text())
    assert (state["epoch"], state["latent_dim"], state["image_size"]) == (2, 16, 32)
    generator = keras.saving.load_model(result.model_path, safe_mode=True)
    images = np.asarray(generator.predict(np.random.default_rng(0).standard_normal((4, 16)), verbose=0))
    assert images.shape == (4, 32, 32, 1)
    assert images.min() >= -1.0 and images.max() <= 1.0


@pytest.mark.parametrize("recipe", [{}, LEGACY_RECIPE], ids=["hinge+spectral-norm", "legacy"])
def test_generator_step_leaves_the_discriminator_unchanged_and_discriminator_step_trains_it(recipe):
    """Every discriminator weight counts, spectral norm's kernel and power-iteration vector included."""
    from mritune.trainables.dcgan.model import build_discriminator, build_generator, compile_gan

    cfg = DCGANConfig.from_dict({**TINY_DCGAN, **recipe})
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    combined = compile_gan(cfg, generator, discriminator)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((8, cfg.latent_dim)).astype("float32")
    d_before = [w.numpy().copy() for w in discriminator.weights]
    g_before = [w.numpy().copy() for w in generator.trainable_weights]
    discriminator.trainable = False
    combined.train_on_batch(noise, np.ones((8, 1), "float32"))
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(d_before, discriminator.weights))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(g_before, generator.trainable_weights))
    discriminator.trainable = True
    images = rng.uniform(-1, 1, (8, 32, 32, 1)).astype("float32")
    discriminator.train_on_batch(images, np.ones((8, 1), "float32"))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(d_before, discriminator.weights))


def test_resume_continues_the_epoch_count_and_optimizer_state(two_epoch_run, tiny_dataset, tmp_path):
    import keras

    from mritune.trainables.dcgan.training import train_dcgan

    config, reports, _ = two_epoch_run
    resumed = []
    result = train_dcgan(config, tiny_dataset, resumed.append, resume_from=reports[0].checkpoint_dir,
                         workdir=str(tmp_path))
    assert [r.epoch for r in resumed] == [2] and result.epochs_completed == 2
    steps_per_epoch = len(tiny_dataset.x_train) // config["batch_size"]
    generator = keras.saving.load_model(result.model_path, safe_mode=True)
    assert int(generator.optimizer.iterations.numpy()) == 2 * steps_per_epoch


def test_same_config_and_seed_give_the_same_metrics(two_epoch_run, tiny_dataset, tmp_path):
    from mritune.trainables.dcgan.training import train_dcgan

    config, reports, _ = two_epoch_run
    again = []
    train_dcgan({**config, "epochs": 1}, tiny_dataset, again.append, workdir=str(tmp_path))
    # A one-epoch training ends after epoch 1, so its report also holds the test split's metrics.
    assert TEST_METRICS <= set(again[0].metrics)
    assert 0 < again[0].metrics["test_fd_floor"] < again[0].metrics["test_fd"]
    without_test = {k: v for k, v in again[0].metrics.items() if not k.startswith("test_")}
    assert comparable(without_test) == comparable(reports[0].metrics)


def poison_generator(checkpoint_dir: str | Path) -> None:
    """Overwrite every generator weight in a checkpoint with NaN (a forced numerical blow-up)."""
    import keras

    path = Path(checkpoint_dir) / "generator.keras"
    generator = keras.saving.load_model(path, safe_mode=True)
    for weight in generator.weights:
        weight.assign(np.full(weight.shape, np.nan, dtype="float32"))
    generator.save(path)


def test_forced_nan_stops_the_training_as_diverged(two_epoch_run, tiny_dataset, tmp_path):
    import shutil

    from mritune.trainables.dcgan.training import train_dcgan

    config, reports, _ = two_epoch_run
    poisoned = tmp_path / "poisoned"
    shutil.copytree(reports[0].checkpoint_dir, poisoned)
    poison_generator(poisoned)
    seen = []
    with pytest.raises(TrainingDiverged, match="epoch 2"):
        train_dcgan(config, tiny_dataset, seen.append, resume_from=str(poisoned), workdir=str(tmp_path / "run"))
    assert seen == []  # never reported as a score


def test_identical_samples_are_reported_as_mode_collapse():
    from mritune.trainables.dcgan.training import _check_collapse

    varied = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 1))
    _check_collapse(varied, 1)  # no error for distinct samples
    with pytest.raises(TrainingDiverged, match="mode collapse"):
        _check_collapse(np.repeat(varied[:1], 16, axis=0), 3)


def test_residual_variant_adds_residual_blocks():
    from mritune.trainables.dcgan.model import build_discriminator, build_generator

    plain, residual = DCGANConfig.from_dict(TINY_DCGAN), DCGANConfig.from_dict({**TINY_DCGAN, "residual": True})
    for build in (build_generator, build_discriminator):
        names = [layer.name for layer in build(residual).layers]
        assert any(name.endswith("_add") for name in names)
        assert build(residual).count_params() > build(plain).count_params()


@pytest.mark.parametrize("size", [32, 64])
def test_generator_shape_follows_image_size(size):
    from mritune.trainables.dcgan.model import build_discriminator, build_generator

    cfg = DCGANConfig.from_dict({**TINY_DCGAN, "image_size": size})
    assert build_generator(cfg).output_shape == (None, size, size, 1)
    assert build_discriminator(cfg).output_shape == (None, 1)
