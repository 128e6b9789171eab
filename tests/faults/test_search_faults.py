"""Fault scenarios 1, 7 and 8 on real searches: a trial's process killed mid-training, every trial diverging, and
a storage_path that cannot be written."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.checker import assert_nothing_lost, tune_trial_ids
from tests.platform.search_helpers import tiny_spec


def test_a_search_whose_every_trial_diverges_ends_failed_and_registers_nothing(local_ray, tmp_path):
    """Scenario 7: SGD at learning rate 1.0 with l2 1.0 overflows to a NaN loss in epoch 2 (TrainingDiverged).

    One trial: the outcome is the same for any number that all diverge, and Tune replaces an errored trial's
    worker process, so each more trial would import TensorFlow again."""
    from mlflow.tracking import MlflowClient

    from mritune.platform.run.runner import run_search

    spec = tiny_spec(tmp_path, overrides=(
        "search.num_samples=1", "search.algorithm=random", "scheduler.name=fifo", "scheduler.max_t=2",
        "search.space.learning_rate={choice: [1.0]}", "trainable.optimizer=sgd", "trainable.l2=1.0",
        "trainable.class_weighting=none", "registry.model_name=fault-diverged",
        "failure.max_failures=0"))  # a retry diverges the same way; scenario 1 below covers retries
    outcome = run_search(spec)

    assert outcome.status == "FAILED" and outcome.registration is None, (outcome.table, outcome.registration)
    assert "no trial produced a usable val_macro_f1 (1 of 1 errored" in outcome.status_reason
    summary = assert_nothing_lost(outcome.tracking_uri, outcome.parent_run_id,
                                  trial_ids=tune_trial_ids(outcome.experiment_path), parent_status="FAILED")
    assert summary["runs"] == 1
    client = MlflowClient(outcome.tracking_uri)
    children = client.search_runs([outcome.experiment_id], f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    assert {run.info.status for run in children} == {"FAILED"}
    assert all("diverged" in run.data.tags["mritune.error"] for run in children)
    assert client.search_registered_models("name = 'fault-diverged'") == []


@contextlib.contextmanager
def unwritable_folder(parent: Path):
    """A full disk (a 64 KiB tmpfs, when this process may mount one: root), else a read-only folder."""
    folder = parent / "storage"
    folder.mkdir()
    if os.geteuid() == 0:  # root ignores permissions, but may mount
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
        try:
            yield folder, "No space left on device"
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o500)
        try:
            yield folder, "Permission denied"
        finally:
            folder.chmod(0o700)


def test_an_unwritable_storage_path_is_refused_before_any_trial_starts(tmp_path):
    """Scenario 8: one line naming storage_path, exit 2, and no run in the tracking store."""
    from mlflow.tracking import MlflowClient

    from mritune.platform.spec.config import spec_to_yaml
    from mritune.platform.tracking.trial_runs import ensure_experiment

    spec = tiny_spec(tmp_path)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(spec_to_yaml(spec))
    experiment_id = ensure_experiment(spec.experiment, spec.tracking.uri)
    with unwritable_folder(tmp_path) as (folder, reason):
        result = subprocess.run(
            [sys.executable, "-c", "from mritune.platform.cli.app import main; main()", "search", str(spec_file),
             "--set", f"storage_path={folder / 'ray_results'}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == (f"error: storage_path {folder / 'ray_results'} cannot hold the search's "
                                     f"checkpoints ({reason}); choose a writable folder with free space")
    assert MlflowClient(spec.tracking.uri).search_runs([experiment_id]) == []


def _kill_when_epoch_logged(tracking_uri: str, experiment_id: str, epoch: int, killed: dict) -> None:
    """SIGKILL the process of the first trial run that has logged ``epoch`` (its pid is the run's worker_pid tag)."""
    import signal
    import time

    from mlflow.tracking import MlflowClient

    from mritune.platform.tracking.tags import WORKER_PID_TAG
    from tests.fixtures_processes import wait_until

    client = MlflowClient(tracking_uri)

    def trial_at_epoch():
        runs = client.search_runs([experiment_id], f"tags.`{WORKER_PID_TAG}` != '' and metrics.epoch >= {epoch}")
        return runs[0] if runs else None

    run = wait_until(trial_at_epoch, timeout_s=300, what=f"a trial run at epoch {epoch}", interval_s=0.05)
    pid = int(run.data.tags[WORKER_PID_TAG])
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    killed.update(pid=pid, run_id=run.info.run_id, at=time.time(), epochs_logged=int(run.data.metrics["epoch"]))


@pytest.mark.slow  # ~80 s on the shared 2-core machine: a restarted worker process, six epochs, a registration
def test_a_trial_process_killed_mid_training_resumes_from_its_checkpoint(local_ray, tmp_path):
    """Scenario 1: the trial's worker process SIGKILLed during epoch 3 of 6; Tune retries it (failure.max_failures,
    default 1) from its last checkpoint; the run logs each epoch once and at most one epoch is trained twice."""
    import threading

    from mlflow.tracking import MlflowClient
    from ray.tune import ExperimentAnalysis

    from mritune.platform.run.runner import run_search
    from mritune.platform.tracking.tags import EPOCHS_REDONE_TAG, RESTORED_FROM_TAG
    from mritune.platform.tracking.trial_runs import ensure_experiment
    from tests.faults.checker import record_scenario

    spec = tiny_spec(tmp_path, overrides=(
        "search.num_samples=1", "search.algorithm=random", "scheduler.name=fifo", "scheduler.max_t=6",
        "data.synthetic.n=600"))
    assert spec.failure.max_failures >= 1
    killed: dict = {}
    experiment_id = ensure_experiment(spec.experiment, spec.tracking.uri)  # the store exists before the killer polls
    killer = threading.Thread(target=_kill_when_epoch_logged, args=(spec.tracking.uri, experiment_id, 2, killed),
                              daemon=True)
    killer.start()
    outcome = run_search(spec)
    killer.join(timeout=10)

    assert killed, "the trial finished before it could be killed"
    assert outcome.status == "FINISHED", outcome.status_reason
    (trial,) = ExperimentAnalysis(outcome.experiment_path).trials
    assert trial.num_failures == 1 and trial.status == "TERMINATED", (trial.num_failures, trial.status)
    summary = assert_nothing_lost(outcome.tracking_uri, outcome.parent_run_id, trial_ids={trial.trial_id},
                                  parent_status="FINISHED")
    assert summary["epochs_logged"] == 6
    run = MlflowClient(outcome.tracking_uri).get_run(killed["run_id"])
    restored, redone = int(run.data.tags[RESTORED_FROM_TAG]), int(run.data.tags[EPOCHS_REDONE_TAG])
    # Killed after epoch 2 was logged: epoch 2's checkpoint (or, if the kill beat its upload, epoch 1's) restored.
    assert killed["epochs_logged"] - 1 <= restored <= killed["epochs_logged"] and redone <= 1, (killed, restored)
    history = MlflowClient(outcome.tracking_uri).get_metric_history(run.info.run_id, "epoch")
    next_epoch = min(m.timestamp for m in history if m.step == restored + 1) / 1000
    record_scenario(1, {"injected": "SIGKILL of the trial's worker process after epoch 2 of 6 was logged",
                        "restored_from_epoch": restored, "epochs_redone": redone,
                        "recovery_s": round(next_epoch - killed["at"], 1), "runs_lost": summary["runs_lost"],
                        "trial_failures": trial.num_failures})
