"""Searches on real `ray start` clusters: a real Ray Job with token auth whose trials run on both nodes of a two-node
cluster, the SQLite refusal on several nodes, and a GPU request failing fast on a CPU-only cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.fixtures_processes import wait_until
from tests.platform.search_helpers import tiny_spec

MRITUNE = str(Path(sys.executable).with_name("mritune"))


def write_spec(tmp_path: Path, tracking_uri: str, *overrides: str) -> Path:
    spec = tiny_spec(tmp_path, overrides=("search.num_samples=2", "search.max_concurrent=2",  # one trial per node
                                          "scheduler.name=fifo", "scheduler.max_t=1",
                                          f"tracking.uri={tracking_uri}", "tracking.experiment=cluster", *overrides))
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    return path


def run_mritune(args: list[str], *, env: dict, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([MRITUNE, *args], env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_several_nodes_refuse_a_local_tracking_store(two_node_cluster, tmp_path):
    spec_file = write_spec(tmp_path, f"sqlite:///{tmp_path}/mlruns.db")
    refused = run_mritune(["search", str(spec_file), "--address", two_node_cluster.gcs_address],
                          env=two_node_cluster.subprocess_env(), cwd=tmp_path, timeout=300)
    assert refused.returncode == 2
    assert "mlflow server" in refused.stderr and "Traceback" not in refused.stderr


def test_gpu_request_on_cpu_only_cluster_fails_before_any_trial(ray_head, tmp_path):
    spec_file = write_spec(tmp_path, f"sqlite:///{tmp_path}/mlruns.db", "resources.gpu=0.5")
    refused = run_mritune(["search", str(spec_file), "--address", ray_head.gcs_address],
                          env=ray_head.subprocess_env(), cwd=tmp_path, timeout=300)
    assert refused.returncode == 2
    assert "GPU" in refused.stderr.splitlines()[-1]
    assert not (tmp_path / "ray_results").exists() or not any((tmp_path / "ray_results").rglob("result.json"))


def test_submitted_search_job_runs_with_token_auth_and_places_trials_on_both_nodes(two_node_cluster, mlflow_server,
                                                                                   tmp_path):
    """`mritune submit` to a two-node cluster with token auth: the job's search runs a trial on each node (both
    nodes run on this machine, so its folder is storage they share; test_cluster_local.py uses S3) and registers."""
    from mlflow.tracking import MlflowClient

    spec_file = write_spec(tmp_path, mlflow_server, "tracking.experiment=job", "search.algorithm=random",
                           "storage_shared=true")
    env = two_node_cluster.subprocess_env()
    address = two_node_cluster.dashboard_url
    submitted = run_mritune(["submit", str(spec_file), "--address", address, "--tracking-uri", mlflow_server],
                            env=env, cwd=tmp_path, timeout=120)
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    job_id = submitted.stdout.strip().splitlines()[-1]

    def final_status():
        status = run_mritune(["jobs", "status", job_id, "--address", address], env=env, cwd=tmp_path,
                             timeout=60).stdout.strip()
        return status if status in {"SUCCEEDED", "FAILED", "STOPPED"} else None

    status = wait_until(final_status, timeout_s=600, what=f"job {job_id} ending")
    logs = run_mritune(["jobs", "logs", job_id, "--address", address], env=env, cwd=tmp_path).stdout
    assert status == "SUCCEEDED", logs[-3000:]
    assert "Registered:" in logs
    # MLflow prints a link for every run ended on an http server; the quiet console prints the search's one link.
    assert "View run" not in logs, logs[-3000:]
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("job")
    parents = client.search_runs([experiment.experiment_id], "tags.`mritune.role` = 'search'")
    assert [run.info.status for run in parents] == ["FINISHED"]
    trials = client.search_runs([experiment.experiment_id], "tags.`mritune.role` = 'trial'")
    nodes = {run.data.tags["mritune.node_id"] for run in trials}
    assert len(trials) == 2 and len(nodes) == 2, f"trials ran on {nodes}"
    assert all(run.info.status == "FINISHED" for run in trials)
