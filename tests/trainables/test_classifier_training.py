"""train_classifier on the tiny synthetic dataset: metrics, artifacts, saved-model contract, resume, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.trainables.training_helpers import TINY_CLASSIFIER, assert_finite_metrics, comparable, few_tf_threads

VAL_METRICS = ["epoch", "train_loss", "val_loss", "val_accuracy", "val_macro_f1", "val_weighted_f1", "val_auc"]
TEST_METRICS = ["test_macro_f1", "test_accuracy", "test_auc"]


@pytest.fixture(scope="module", autouse=True)
def _threads():
    few_tf_threads()


@pytest.fixture(scope="module")
def two_epoch_run(tiny_dataset, tmp_path_factory):
    from mritune.trainables.classifier.training import train_classifier

    reports = []
    config = {**TINY_CLASSIFIER, "epochs": 2}
    result = train_classifier(config, tiny_dataset, reports.append, workdir=str(tmp_path_factory.mktemp("cls")))
    return config, reports, result


def test_every_epoch_reports_all_validation_metrics_finite(two_epoch_run, tiny_dataset):
    _, reports, _ = two_epoch_run
    assert [r.epoch for r in reports] == [1, 2]
    per_class = [f"val_f1_{name}" for name in tiny_dataset.class_names]
    for report in reports:
        assert report.metrics["epoch"] == report.epoch
        assert_finite_metrics(report.metrics, VAL_METRICS + per_class)
        assert 0.0 <= report.metrics["val_accuracy"] <= 1.0
        assert (Path(report.checkpoint_dir) / "model.keras").is_file()


def test_final_report_carries_test_metrics_and_artifact_files(two_epoch_run):
    _, reports, result = two_epoch_run
    assert not any(key.startswith("test_") for key in reports[0].metrics)
    final = reports[-1]
    assert_finite_metrics(final.metrics, TEST_METRICS)
    assert set(final.artifacts) == {"confusion_matrix", "roc_curves", "classification_report",
                                    "classification_report_json"}
    for path in final.artifacts.values():
        assert Path(path).stat().st_size > 0
    assert Path(final.artifacts["confusion_matrix"]).read_bytes()[:4] == b"\x89PNG"
    report = json.loads(Path(final.artifacts["classification_report_json"]).read_text())
    assert "NonDemented" in report
    assert result.metrics == final.metrics and result.epochs_completed == 2


def test_checkpoint_state_and_saved_model_contract(two_epoch_run, tiny_dataset):
    import keras

    import mritune.trainables.layers  # noqa: F401

    config, reports, result = two_epoch_run
    state = json.loads((Path(reports[-1].checkpoint_dir) / "state.json").read_text())
    assert state["epoch"] == 2 and state["image_size"] == 32
    assert state["class_names"] == list(tiny_dataset.class_names)
    assert state["config"]["backbone"] == "small_cnn" and "rng" in state
    model = keras.saving.load_model(result.model_path, safe_mode=True)
    assert model.input_shape == (None, 32, 32, 1)
    raw_pixels = tiny_dataset.x_test[:8].astype("float32")[..., None]  # uint8 values 0..255, unscaled
    probs = np.asarray(model.predict(raw_pixels, verbose=0))
    assert probs.shape == (8, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.optimizer is not None and int(model.optimizer.iterations.numpy()) > 0


def test_resume_continues_the_epoch_count_and_optimizer_state(two_epoch_run, tiny_dataset, tmp_path):
    from mritune.trainables.classifier.training import train_classifier

    config, reports, _ = two_epoch_run
    first_checkpoint = reports[0].checkpoint_dir
    resumed = []
    result = train_classifier(config, tiny_dataset, resumed.append, resume_from=first_checkpoint,
                              workdir=str(tmp_path))
    assert [r.epoch for r in resumed] == [2]
    assert result.epochs_completed == 2
    import keras

    model = keras.saving.load_model(result.model_path, safe_mode=True)
    steps_per_epoch = -(-len(tiny_dataset.x_train) // config["batch_size"])
    assert int(model.optimizer.iterations.numpy()) == 2 * steps_per_epoch


def test_resume_after_the_last_epoch_returns_the_checkpoint_without_training(two_epoch_run, tiny_dataset, tmp_path):
    from mritune.trainables.classifier.training import train_classifier

    config, reports, _ = two_epoch_run
    seen = []
    result = train_classifier(config, tiny_dataset, seen.append, resume_from=reports[-1].checkpoint_dir,
                              workdir=str(tmp_path))
    assert seen == [] and result.epochs_completed == 2
    assert result.metrics["test_macro_f1"] == reports[-1].metrics["test_macro_f1"]
    assert Path(result.artifacts["roc_curves"]).is_file()


def test_resume_refuses_a_checkpoint_of_another_architecture(two_epoch_run, tiny_dataset, tmp_path):
    from mritune.trainables.classifier.training import train_classifier

    config, reports, _ = two_epoch_run
    with pytest.raises(ValueError, match="dense_units"):
        train_classifier({**config, "dense_units": 8}, tiny_dataset, lambda r: None,
                         resume_from=reports[0].checkpoint_dir, workdir=str(tmp_path))


def epoch_one_metrics(reports) -> dict:
    """Epoch-1 metrics without timings or test metrics (a 1-epoch run adds those; a 2-epoch run does not)."""
    return {k: v for k, v in comparable(reports[0].metrics).items() if not k.startswith("test_")}


@pytest.fixture(scope="module")
def one_epoch_run(two_epoch_run, tiny_dataset, tmp_path_factory):
    """The same config and seed as two_epoch_run, stopped after one epoch: its epoch 1 must be identical."""
    from mritune.trainables.classifier.training import train_classifier

    config, _, _ = two_epoch_run
    reports = []
    train_classifier({**config, "epochs": 1}, tiny_dataset, reports.append,
                     workdir=str(tmp_path_factory.mktemp("again")))
    return reports


def test_same_config_and_seed_give_the_same_metrics(two_epoch_run, one_epoch_run):
    _, reports, _ = two_epoch_run
    assert epoch_one_metrics(one_epoch_run) == epoch_one_metrics(reports)


# Hyperparameters that act only during training: each one changes the first epoch's training loss.
# (Architecture and compile settings are covered in test_classifier_hyperparameters.)
TRAINING_CHANGES = [("batch_size", 16), ("class_weighting", "none"), ("seed", 1)]


@pytest.mark.parametrize(("key", "value"), TRAINING_CHANGES, ids=[f"{k}={v}" for k, v in TRAINING_CHANGES])
def test_hyperparameter_changes_the_training(key, value, two_epoch_run, tiny_dataset, tmp_path):
    from mritune.trainables.classifier.config import ClassifierConfig
    from mritune.trainables.classifier.training import train_classifier

    config, reports, _ = two_epoch_run
    assert ClassifierConfig.from_dict(config).to_dict()[key] != value
    changed = []
    train_classifier({**config, key: value, "epochs": 1}, tiny_dataset, changed.append, workdir=str(tmp_path))
    assert changed[0].metrics["train_loss"] != reports[0].metrics["train_loss"]


def test_epochs_sets_the_number_of_epochs_trained(two_epoch_run, one_epoch_run):
    assert [r.epoch for r in one_epoch_run] == [1] and [r.epoch for r in two_epoch_run[1]] == [1, 2]


def test_bad_dataset_is_a_one_line_error(tiny_dataset, tmp_path):
    from dataclasses import replace

    from mritune.trainables.classifier.training import train_classifier

    empty_val = replace(tiny_dataset, x_val=tiny_dataset.x_val[:0], y_val=tiny_dataset.y_val[:0])
    with pytest.raises(ValueError, match="val split is empty"):
        train_classifier(TINY_CLASSIFIER, empty_val, lambda r: None, workdir=str(tmp_path))
