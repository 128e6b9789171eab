"""Ray connection and pre-flight checks against real clusters started by `ray start` (see fixtures_processes)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mritune.platform.infra.cluster import check_resources, connect_ray, disconnect, require_remote_tracking
from tests.fixtures_processes import free_ports, ray_auth_env, wait_until

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(autouse=True)
def _quiet_tensorflow(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")


def test_unreachable_address_fails_fast_in_one_line():
    (port,) = free_ports(1)
    started = time.monotonic()
    with pytest.raises(ConnectionError) as caught:
        connect_ray(f"127.0.0.1:{port}")
    message = str(caught.value)
    assert time.monotonic() - started < 10
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message and "ray start --head" in message


def test_dashboard_url_is_not_a_ray_address():
    with pytest.raises(ValueError, match="mritune submit"):
        connect_ray("http://127.0.0.1:8265")


def test_joining_with_wrong_token_is_refused_at_once(ray_head):
    with ray_auth_env({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}):
        started = time.monotonic()
        with pytest.raises(PermissionError, match="rejected the token") as caught:
            connect_ray(ray_head.gcs_address)
        assert time.monotonic() - started < 10
        assert "\n" not in str(caught.value)


def test_joining_without_token_mode_says_how_to_enable_it(ray_head):
    with ray_auth_env({"RAY_AUTH_MODE": "disabled"}):
        with pytest.raises(PermissionError, match="RAY_AUTH_MODE=token"):
            connect_ray(ray_head.gcs_address)


def test_joined_cluster_is_described_and_checked(ray_head, tmp_path):
    with ray_auth_env(ray_head.env):
        os.environ["RAY_ADDRESS"] = ray_head.gcs_address  # what a Ray Job's driver sees; restored on exit
        try:
            cluster = connect_ray(None)
            assert not cluster.embedded
            assert (cluster.num_nodes, cluster.total_cpu, cluster.total_gpu) == (1, 2.0, 0.0)

            started = time.monotonic()
            with pytest.raises(ValueError, match="resources.gpu: 0.5 GPU per trial .* the cluster has no GPU"):
                check_resources(cpu=1, gpu=0.5, cluster=cluster)
            assert time.monotonic() - started < 1
            with pytest.raises(ValueError, match="resources.cpu: 3 CPUs .* largest node has 2"):
                check_resources(cpu=3, gpu=0, cluster=cluster)
            check_resources(cpu=2, gpu=0, cluster=cluster)
            # One node: the driver's SQLite file is fine.
            require_remote_tracking(f"sqlite:///{tmp_path}/mlruns.db", cluster)
        finally:
            disconnect()


def test_mlflow_server_accepts_a_run_over_http(mlflow_server, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment_id = client.create_experiment(f"fixture-check-{tmp_path.name}")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "val_macro_f1", 0.25)
    note = tmp_path / "note.txt"
    note.write_text("logged over HTTP")
    client.log_artifact(run.info.run_id, str(note))
    client.set_terminated(run.info.run_id)

    stored = client.get_run(run.info.run_id)
    assert stored.data.metrics["val_macro_f1"] == 0.25
    assert stored.info.status == "FINISHED"
    assert [item.path for item in client.list_artifacts(run.info.run_id)] == ["note.txt"]


def _node_reporting_trainable(config):
    """Wait until both trials hold their CPU (so they must sit on different nodes), then report the node."""
    import ray
    from mlflow import MlflowClient
    from ray import tune

    node_id = ray.get_runtime_context().get_node_id()
    barrier = Path(config["barrier_dir"])
    (barrier / f"started-{config['index']}").touch()
    wait_until(lambda: len(list(barrier.glob("started-*"))) >= 2, timeout_s=120, what="the other trial starting")
    client = MlflowClient(tracking_uri=config["tracking_uri"])
    run = client.create_run(config["experiment_id"], tags={"node_id": node_id})
    client.set_terminated(run.info.run_id)
    tune.report({"node_id": node_id, "done": 1})


# Slow: tests/platform/test_search_cluster.py places a real mritune search's trials on both nodes by default.
@pytest.mark.slow
def test_two_node_cluster_runs_trials_on_both_nodes(two_node_cluster, mlflow_server, tmp_path):
    from mlflow import MlflowClient
    from ray import tune

    experiment_id = MlflowClient(tracking_uri=mlflow_server).create_experiment(f"two-nodes-{tmp_path.name}")
    (tmp_path / "barrier").mkdir()
    with ray_auth_env(two_node_cluster.env):
        try:
            cluster = connect_ray(two_node_cluster.gcs_address)
            assert cluster.num_nodes == 2 and cluster.total_cpu == 2.0
            with pytest.raises(ValueError, match="mlflow server --host 127.0.0.1 --port 5000"):
                require_remote_tracking(f"sqlite:///{tmp_path}/mlruns.db", cluster)
            require_remote_tracking(mlflow_server, cluster)

            tuner = tune.Tuner(
                tune.with_resources(_node_reporting_trainable, {"cpu": 1}),
                param_space={
                    "index": tune.grid_search([0, 1]),
                    "barrier_dir": str(tmp_path / "barrier"),
                    "tracking_uri": mlflow_server,
                    "experiment_id": experiment_id,
                },
                run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), name="two-nodes", verbose=0),
            )
            results = tuner.fit()
        finally:
            disconnect()

    assert not results.errors
    trial_nodes = {result.metrics["node_id"] for result in results}
    assert trial_nodes == {node.node_id for node in cluster.nodes}
    logged = MlflowClient(tracking_uri=mlflow_server).search_runs([experiment_id])
    assert {run.data.tags["node_id"] for run in logged} == trial_nodes
