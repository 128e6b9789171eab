"""Kill a worker node in the middle of a search on `mritune cluster local`: its trial resumes on another node from
the checkpoint in S3, and no trial is lost (issue 12's fault scenario 2, ending with the fault suite's checker).
Slow (a three-node cluster and a search of four 12-epoch trials)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from mritune.platform import local_cluster
from mritune.platform.processes import live_session_pids, wait_until
from tests.platform.test_cluster_local import MRITUNE, run_env, spec_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
EPOCHS = 12


def test_a_killed_worker_node_loses_no_trial(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient
    from ray.tune import ExperimentAnalysis

    from mritune.platform.runner import find_experiment

    state_dir = tmp_path / "state"
    cluster = local_cluster.up(workers=2, state_dir=state_dir)
    try:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_USERNAME",
                    "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.setenv(key, cluster.env[key])
        spec = spec_file(tmp_path, cluster.storage_path, "search.num_samples=4", "search.max_concurrent=3",
                         f"scheduler.max_t={EPOCHS}", "data.synthetic.n=600", "failure.max_failures=2", "tracking.experiment=failover")
        with open(tmp_path / "search.log", "w") as log:
            search = subprocess.Popen([MRITUNE, "search", str(spec)], env=run_env(cluster.env), cwd=tmp_path,
                                      stdout=log, stderr=subprocess.STDOUT)
        workers = [process.pid for process in cluster.processes if process.name.startswith("ray-worker")]
        client = MlflowClient(cluster.tracking_uri)
        victim = wait_until(lambda: _worker_with_checkpointed_trial(workers, client), timeout_s=900,
                            what="a trial on a worker node past its first epoch", process=search,
                            log=tmp_path / "search.log", interval_s=1.0)
        for pid in live_session_pids(victim):  # SIGKILL: the node dies at once, it does not drain
            os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        assert search.wait(timeout=1200) == 0, (tmp_path / "search.log").read_text()[-3000:]

        output = (tmp_path / "search.log").read_text()
        rows = [line for line in output.splitlines() if line.startswith("| ") and " | OK | " in line]
        assert len(rows) == 4 and all(f" | OK | {EPOCHS} | " in row for row in rows), output[-3000:]
        trials = ExperimentAnalysis(str(find_experiment("tiny-classifier", cluster.storage_path))).trials
        assert all(trial.last_result["training_iteration"] == EPOCHS for trial in trials)
        # Tune's own account: a trial failed when its node died, and was retried to the end.
        assert any(trial.num_failures >= 1 for trial in trials), [trial.num_failures for trial in trials]
        # The trial the node took down went on from its checkpoint in S3: it trained fewer epochs after its
        # restore than it reports in all, instead of training all of them again.
        assert any(trial.last_result["iterations_since_restore"] < EPOCHS for trial in trials)
        _check_nothing_lost(cluster, client, killed_at)
    finally:
        local_cluster.down(state_dir=state_dir)


def _check_nothing_lost(cluster, client, killed_at: float) -> None:
    """The fault suite's checker over the search's MLflow record, and the scenario's figures for the README."""
    from mritune.platform import storage
    from mritune.platform.runner import find_experiment
    from mritune.platform.search_folder import STATE_FILE
    from mritune.platform.tracking import EPOCHS_REDONE_TAG, RESTORED_FROM_TAG
    from tests.faults.checker import assert_nothing_lost, record_scenario, tune_trial_ids

    experiment = find_experiment("tiny-classifier", cluster.storage_path)
    state = json.loads(storage.read_bytes(experiment.child(STATE_FILE)))
    summary = assert_nothing_lost(cluster.tracking_uri, state["parent_run_id"],
                                  trial_ids=tune_trial_ids(str(experiment)), parent_status="FINISHED")
    runs = client.search_runs([state["experiment_id"]], f"tags.mlflow.parentRunId = '{state['parent_run_id']}'")
    restored = [run for run in runs if RESTORED_FROM_TAG in run.data.tags]
    assert restored, "no trial run records a restore from its checkpoint"
    resumed_at = min(m.timestamp / 1000.0 for run in restored
                     for m in client.get_metric_history(run.info.run_id, "epoch") if m.timestamp / 1000.0 > killed_at)
    record_scenario(2, {"injected": "SIGKILL of a worker node (all its processes) of `cluster local up --workers 2` "
                                    "under a trial past its first epoch",
                        "restored_from_epoch": [int(run.data.tags[RESTORED_FROM_TAG]) for run in restored],
                        "epochs_redone": sum(int(run.data.tags.get(EPOCHS_REDONE_TAG, 0)) for run in restored),
                        "recovery_s": round(resumed_at - killed_at, 1), "runs_lost": summary["runs_lost"]})


def _worker_with_checkpointed_trial(sessions: list[int], client) -> int | None:
    """The worker node (its session) where a trial has reported (and checkpointed) an epoch and still runs:
    the trial's MLflow run carries its actor's pid."""
    from mritune.platform.tracking import WORKER_PID_TAG

    experiment = client.get_experiment_by_name("failover")
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], "tags.`mritune.role` = 'trial'")
    checkpointed = {run.data.tags.get(WORKER_PID_TAG) for run in runs
                    if run.info.status == "RUNNING" and "train_seconds" in run.data.metrics}
    for session in sessions:
        if {str(pid) for pid in live_session_pids(session)} & checkpointed:
            return session
    return None
