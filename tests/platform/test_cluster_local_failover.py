"""Kill a worker node in the middle of a search on `mritune cluster local`: its trial resumes on another node from
the checkpoint in S3, and no trial is lost. Slow (a three-node cluster and a search of three 12-epoch trials)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

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
        spec = spec_file(tmp_path, cluster.storage_path, "search.num_samples=3", "search.max_concurrent=3",
                         f"scheduler.max_t={EPOCHS}", "data.synthetic.n=600", "failure.max_failures=2", "tracking.experiment=failover")
        with open(tmp_path / "search.log", "w") as log:
            search = subprocess.Popen([MRITUNE, "search", str(spec)], env=run_env(cluster.env), cwd=tmp_path,
                                      stdout=log, stderr=subprocess.STDOUT)
        victim = next(process for process in cluster.processes if process.name == "ray-worker1")
        client = MlflowClient(cluster.tracking_uri)
        wait_until(lambda: _checkpointed_trial_running_on(victim.pid, client), timeout_s=900,
                   what="a trial on the victim node past its first epoch", process=search,
                   log=tmp_path / "search.log", interval_s=1.0)
        for pid in live_session_pids(victim.pid):  # SIGKILL: the node dies at once, it does not drain
            os.kill(pid, signal.SIGKILL)
        assert search.wait(timeout=1200) == 0, (tmp_path / "search.log").read_text()[-3000:]

        output = (tmp_path / "search.log").read_text()
        rows = [line for line in output.splitlines() if line.startswith("| ") and " | OK | " in line]
        assert "ActorDiedError" in output or "NodeDiedError" in output, "no trial saw the node die"
        assert len(rows) == 3 and all(f" | OK | {EPOCHS} | " in row for row in rows), output[-3000:]
        trials = ExperimentAnalysis(str(find_experiment("tiny-classifier", cluster.storage_path))).trials
        assert all(trial.last_result["training_iteration"] == EPOCHS for trial in trials)
        # The trial the node took down went on from its checkpoint in S3: it trained fewer epochs after its
        # restore than it reports in all, instead of training all of them again.
        assert any(trial.last_result["iterations_since_restore"] < EPOCHS for trial in trials)
    finally:
        local_cluster.down(state_dir=state_dir)


def _checkpointed_trial_running_on(session: int, client) -> bool:
    """A trial whose actor process runs in that node's session has reported (and checkpointed) an epoch and is
    still running: its MLflow run carries the actor's pid."""
    from mritune.platform.tracking import WORKER_PID_TAG

    experiment = client.get_experiment_by_name("failover")
    if experiment is None:
        return False
    pids = {str(pid) for pid in live_session_pids(session) if _is_trial_process(pid)}
    runs = client.search_runs([experiment.experiment_id], "tags.`mritune.role` = 'trial'")
    return any(run.data.tags.get(WORKER_PID_TAG) in pids and run.info.status == "RUNNING"
               and "train_seconds" in run.data.metrics for run in runs)


def _is_trial_process(pid: int) -> bool:
    """Titled ray::<trainable name> (not ray::DashboardAgent, ray::RuntimeEnvAgent)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return False
    return title.startswith("ray::") and "trainable" in title
