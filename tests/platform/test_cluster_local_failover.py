"""Kill a worker node in the middle of a search on `mritune cluster local`: its trial resumes on another node from
the checkpoint in S3, and no trial is lost. Slow (a three-node cluster and a search of three 8-epoch trials)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mritune.platform import local_cluster
from mritune.platform.processes import live_session_pids, stop_sessions, wait_until
from tests.platform.test_cluster_local import MRITUNE, run_env, spec_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


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
                         "scheduler.max_t=8", "failure.max_failures=2", "tracking.experiment=failover")
        with open(tmp_path / "search.log", "w") as log:
            search = subprocess.Popen([MRITUNE, "search", str(spec)], env=run_env(cluster.env), cwd=tmp_path,
                                      stdout=log, stderr=subprocess.STDOUT)
        victim = next(process for process in cluster.processes if process.name == "ray-worker1")
        client = MlflowClient(cluster.tracking_uri)
        wait_until(lambda: _trial_on(victim.pid) and _every_trial_has_an_epoch(client, 3), timeout_s=900,
                   what="three trials past their first epoch, one on the victim node", process=search,
                   log=tmp_path / "search.log", interval_s=1.0)
        stop_sessions([victim.pid], grace_s=0)  # SIGKILL at once: the node dies, it does not shut down
        assert search.wait(timeout=1200) == 0, (tmp_path / "search.log").read_text()[-3000:]

        output = (tmp_path / "search.log").read_text()
        rows = [line for line in output.splitlines() if line.startswith("| ") and " | OK | " in line]
        assert len(rows) == 3 and all(" | OK | 8 | " in row for row in rows), output[-3000:]
        trials = ExperimentAnalysis(str(find_experiment("tiny-classifier", cluster.storage_path))).trials
        restored = [trial for trial in trials if trial.run_metadata.num_failures >= 1]
        assert restored, "no trial saw the node die"
        for trial in restored:  # resumed from its checkpoint in S3, not retrained from epoch 1
            assert trial.last_result["training_iteration"] == 8
            assert trial.last_result["iterations_since_restore"] < 8
    finally:
        local_cluster.down(state_dir=state_dir)


def _trial_on(session: int) -> bool:
    """A Ray task or actor process (a trial: workers are not prestarted here) runs in that node's session."""
    for pid in live_session_pids(session):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except FileNotFoundError:
            continue
        if title.startswith("ray::") and not title.startswith("ray::IDLE"):
            return True
    return False


def _every_trial_has_an_epoch(client, count: int) -> bool:
    experiment = client.get_experiment_by_name("failover")
    if experiment is None:
        return False
    runs = client.search_runs([experiment.experiment_id], "tags.`mritune.role` = 'trial'")
    return len(runs) >= count and all("train_seconds" in run.data.metrics for run in runs)
