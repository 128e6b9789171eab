"""Real Ray Tune runs (local Ray, 2 CPUs) of both trainables: reports, checkpoints, observer hooks, thread
configuration, and a restart that resumes from a checkpoint and then fails as diverged (forced NaN)."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest

from mritune.trainables.tune_trainables import make_trainable
from tests.trainables.training_helpers import TINY_CLASSIFIER, TINY_DCGAN, RecordingObserver, read_events

REPO_ROOT = Path(__file__).resolve().parents[2]


# For the shared local_ray fixture (tests/fixtures_ray.py): quiet TensorFlow, and the repository on the workers' path.
LOCAL_RAY_OPTIONS = {"runtime_env": {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO_ROOT)}}}


def run_tune(task: str, config: dict, data, storage: Path, *, observer_factory, max_failures: int = 0):
    from ray import tune

    trainable = tune.with_parameters(make_trainable(task, observer_factory=observer_factory), data=data)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=config,
        tune_config=tune.TuneConfig(num_samples=1),
        run_config=tune.RunConfig(
            storage_path=str(storage), name=task, verbose=0,
            failure_config=tune.FailureConfig(max_failures=max_failures),
        ),
    )
    return tuner.fit()


def test_classifier_trainable_reports_every_epoch_with_checkpoints(local_ray, tiny_dataset, tmp_path):
    events_file = str(tmp_path / "events.jsonl")
    results = run_tune("classifier", {**TINY_CLASSIFIER, "epochs": 2}, tiny_dataset, tmp_path / "ray",
                       observer_factory=functools.partial(RecordingObserver, events_file))
    result = results[0]
    assert result.error is None
    assert result.metrics["training_iteration"] == 2 and result.metrics["epoch"] == 2
    for key in ("val_macro_f1", "val_auc", "train_loss"):
        assert math.isfinite(result.metrics[key]), key
    # Trials never see the test split: the registry evaluates only the checkpoint it registers.
    assert not [key for key in result.metrics if key.startswith("test_")]
    history = result.metrics_dataframe
    assert list(history["epoch"]) == [1, 2] and history["val_loss"].notna().all()
    with result.checkpoint.as_directory() as folder:
        state = json.loads((Path(folder) / "state.json").read_text())
        assert state["epoch"] == 2 and (Path(folder) / "model.keras").is_file()
        assert not (Path(folder) / "artifacts").exists()
    events = read_events(events_file)
    assert [e["event"] for e in events] == ["start", "epoch", "epoch", "end"]
    assert events[0]["threads"] == 1  # TensorFlow threads follow the trial's 1-CPU share
    assert events[2]["artifacts"] == []
    assert events[-1]["status"] == "FINISHED" and events[-1]["model_exists"]


# Slow (a second real Tune run); the default run checks a forced NaN through train_dcgan directly.
@pytest.mark.slow
def test_dcgan_trial_restarts_from_checkpoint_and_fails_on_forced_nan(local_ray, tiny_dataset, tmp_path):
    events_file = str(tmp_path / "events.jsonl")
    results = run_tune("dcgan", {**TINY_DCGAN, "epochs": 3}, tiny_dataset, tmp_path / "ray",
                       observer_factory=functools.partial(RecordingObserver, events_file, sabotage=True),
                       max_failures=1)
    result = results[0]
    assert result.error is not None and "diverged at epoch 2" in str(result.error)
    events = read_events(events_file)
    assert [e["event"] for e in events] == ["start", "epoch", "epoch", "end", "start", "end"]
    assert events[1]["images"] == ["samples"]
    assert events[3]["status"] == "FAILED" and "simulated worker crash" in events[3]["error"]
    # The restarted attempt resumed after epoch 1 (not from zero) and stopped as diverged, with no score.
    assert events[5]["status"] == "FAILED" and "TrainingDiverged" in events[5]["error"]
    assert "epoch 2" in events[5]["error"]
    assert result.metrics.get("epoch") == 1  # only the healthy first epoch ever reached Tune
