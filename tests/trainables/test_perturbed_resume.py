"""A training resumed with perturbed hyperparameters (what PBT/PB2 do when a trial copies another) trains with the
new values: a loaded Keras model keeps its saved optimizer's learning rate unless the training sets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mritune.trainables.dcgan.config import DCGANConfig
from mritune.trainables.tasks import get_task
from tests.trainables.training_helpers import TINY_CLASSIFIER, TINY_DCGAN, few_tf_threads, saved_learning_rate


@pytest.fixture(scope="module", autouse=True)
def _threads():
    few_tf_threads()


def test_a_resumed_classifier_trains_with_the_new_learning_rate(tiny_dataset, tmp_path):
    from mritune.trainables.classifier.training import train_classifier

    first, resumed = [], []
    train_classifier({**TINY_CLASSIFIER, "learning_rate": 1e-3}, tiny_dataset, first.append,
                     workdir=str(tmp_path / "a"), evaluate_test=False)
    assert saved_learning_rate(Path(first[-1].checkpoint_dir) / "model.keras") == pytest.approx(1e-3)
    train_classifier({**TINY_CLASSIFIER, "learning_rate": 4e-3, "batch_size": 16, "epochs": 2}, tiny_dataset,
                     resumed.append, resume_from=first[-1].checkpoint_dir, workdir=str(tmp_path / "b"),
                     evaluate_test=False)
    assert [r.epoch for r in resumed] == [2]
    # The epoch trained after the resume used the new rate: the optimizer saved after it carries it.
    assert saved_learning_rate(Path(resumed[-1].checkpoint_dir) / "model.keras") == pytest.approx(4e-3)


def test_a_resumed_dcgan_trains_both_models_with_the_new_learning_rates(tiny_dataset, tmp_path):
    from mritune.trainables.dcgan.training import train_dcgan

    first, resumed = [], []
    train_dcgan({**TINY_DCGAN, "lr_g": 2e-4, "lr_d": 3e-4}, tiny_dataset, first.append, workdir=str(tmp_path / "a"),
                evaluate_test=False)
    perturbed = {**TINY_DCGAN, "lr_g": 5e-4, "lr_d": 1e-4, "epochs": 2}
    train_dcgan(perturbed, tiny_dataset, resumed.append, resume_from=first[-1].checkpoint_dir,
                workdir=str(tmp_path / "b"), evaluate_test=False)
    folder = Path(resumed[-1].checkpoint_dir)
    # Epoch 2's rates of the new config's cosine schedule (half the new rates), not the saved optimizers' rates;
    # generator.keras carries the combined model's optimizer (the one that steps the generator).
    lr_g, lr_d = DCGANConfig.from_dict(perturbed).learning_rates(2)
    assert (lr_g, lr_d) == pytest.approx((2.5e-4, 0.5e-4))
    assert saved_learning_rate(folder / "generator.keras") == pytest.approx(lr_g)
    assert saved_learning_rate(folder / "discriminator.keras") == pytest.approx(lr_d)


def test_every_task_declares_settings_a_resume_applies():
    assert get_task("classifier").perturbable == ("learning_rate", "batch_size", "class_weighting")
    assert get_task("dcgan").perturbable == ("lr_g", "lr_d", "batch_size", "label_smoothing", "d_steps")
    # No architecture key may change under a perturbation: the copied weights would not fit.
    from mritune.trainables.classifier.training import ARCHITECTURE_KEYS as CLASSIFIER_ARCHITECTURE
    from mritune.trainables.dcgan.training import ARCHITECTURE_KEYS as DCGAN_ARCHITECTURE

    assert not set(get_task("classifier").perturbable) & set(CLASSIFIER_ARCHITECTURE)
    assert not set(get_task("dcgan").perturbable) & set(DCGAN_ARCHITECTURE)

