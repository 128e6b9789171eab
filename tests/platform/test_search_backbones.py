"""A search whose ``backbone`` is a choice, on a dataset of custom class folders: real local Ray, MLflow, registry.

Each trial logs its backbone; the metrics, the registered pyfunc and ``predict`` use the spec's classes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mritune.platform.spec.config import apply_overrides, parse_spec
from mritune.platform.run.runner import run_search
from tests.mlflow_stores import sqlite_store
from tests.platform.search_helpers import child_runs
from tests.trainables.test_data import _write_class_tree

CLASSES = ["CN", "MCI", "AD"]
BACKBONES = ["small_cnn", "mobilenetv2"]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MRITUNE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mritune-cache"))
    monkeypatch.chdir(tmp_path_factory.getbasetemp())


def backbone_choice_spec(tmp_path: Path, data: Path):
    raw = {
        "name": "backbone-choice",
        "task": "classifier",
        "data": {"path": str(data), "classes": CLASSES, "image_size": 32},
        # One trial per backbone, whatever the searcher draws: both options run in every test run, one after the
        # other in one reused trial process (a second process would import TensorFlow again).
        "search": {"algorithm": "random", "num_samples": 2, "max_concurrent": 1, "seed": 0,
                   "space": {"backbone": {"choice": BACKBONES}, "learning_rate": {"loguniform": [1e-3, 3e-3]}},
                   "points_to_evaluate": [{"backbone": name, "learning_rate": 2e-3} for name in BACKBONES]},
        "scheduler": {"name": "fifo", "max_t": 1},
        "resources": {"cpu": 1, "gpu": 0},
        "tracking": {"uri": sqlite_store(tmp_path / "mlruns.db"), "experiment": "backbone-choice"},
        "storage_path": str(tmp_path / "ray_results"),
        # No re-runs on new seeds before registering (the default re-trains each of the two trials three times):
        # this test is about the backbone choice and the classes; tests/platform/test_rerun_search.py is about re-runs.
        "promotion": {"rerun_top_k": 0},
        # A frozen MobileNetV2 (fine_tune_fraction 0; small_cnn ignores it): tracing its training graph takes a
        # quarter of the time of a trainable one, and the test is about the platform, not the scores.
        "trainable": {"batch_size": 16, "dense_units": 8, "fine_tune_fraction": 0.0},
    }
    return parse_spec(apply_overrides(raw, []))


def test_backbone_choice_runs_each_backbone_and_the_model_follows_the_spec_classes(local_ray, tmp_path):
    from mlflow.tracking import MlflowClient

    from mritune.deploy.predict import run_predict

    _write_class_tree(tmp_path / "export", names=("cn", "mci", "ad"), counts=(16, 16, 16))
    outcome = run_search(backbone_choice_spec(tmp_path, tmp_path / "export"))
    client = MlflowClient(outcome.tracking_uri)
    children = child_runs(client, outcome.experiment_id, outcome.parent_run_id)
    assert sorted(run.data.params["backbone"] for run in children) == sorted(BACKBONES)
    for run in children:
        assert run.info.status == "FINISHED"
        assert {f"val_f1_{name}" for name in CLASSES} <= set(run.data.metrics)
        assert not any(key.startswith("val_f1_") and key.removeprefix("val_f1_") not in CLASSES
                       for key in run.data.metrics)

    registration = outcome.registration
    assert registration is not None
    scans = tmp_path / "scans"
    _write_class_tree(scans, names=("a", "b", "c"), counts=(1, 1, 1))
    predictions = run_predict([str(scans)], model=f"{registration.model_name}/{registration.version}",
                              tracking_uri=outcome.tracking_uri, out=tmp_path / "preds.csv")
    assert len(predictions) == 3 and {p.predicted_class for p in predictions} <= set(CLASSES)
    assert [name for name, _ in predictions[0].probabilities] == CLASSES
    header = (tmp_path / "preds.csv").read_text().splitlines()[0]
    assert header.startswith("path,class,prob_CN,prob_MCI,prob_AD")
