"""Process fixtures: Ray head and worker nodes, MLflow servers; started by the tests, stopped by pid.

This machine is shared: never `ray stop` (it kills every Ray on the machine). Each fixture starts its own
processes in a new session (`start_new_session=True`), on free ports it picked and a temp dir of its own, and
stops exactly the processes of that session. Ray workers put themselves in process groups of their own, so
stopping a process group would miss them: the session id is what they all share.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mritune.platform.infra.local_services import (
    MLFLOW_SERVER_ENV, alive_ray_nodes, mlflow_healthy, ray_node_command, ray_node_env,
)

# The process helpers live in the product (`mritune cluster local` uses them too); re-exported for the tests.
from mritune.platform.infra.processes import (  # noqa: F401
    console_script as _console_script,
    free_ports,
    start_in_new_session,
    stop_session,
    wait_until,
)

# Generous: five engineers share two cores, and under that load a Ray node or `mlflow server` (database
# migrations, then uvicorn) has been seen to take 70-90 s to come up.
RAY_START_TIMEOUT_S = 180.0
MLFLOW_START_TIMEOUT_S = 240.0
CLUSTER_START_ATTEMPTS = 2
# Auth settings that must not leak from the outer environment into the processes started here.
_RAY_ENV_DROPPED = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN", "RAY_AUTH_MODE")


@dataclass(frozen=True, kw_only=True)
class RayCluster:
    """A Ray cluster started by a fixture, with token authentication on."""

    gcs_address: str
    dashboard_url: str
    token: str
    # Environment for drivers and subprocesses: RAY_AUTH_MODE=token and RAY_AUTH_TOKEN.
    env: dict[str, str] = field(repr=False)
    num_nodes: int
    temp_dir: Path

    def subprocess_env(self) -> dict[str, str]:
        """os.environ without outer Ray settings, plus this cluster's auth settings."""
        base = {k: v for k, v in os.environ.items() if k not in _RAY_ENV_DROPPED}
        return {**base, **self.env}


# ---------------------------------------------------------------------------------------------------------------
# Helpers (importable by tests: `from tests.fixtures_processes import wait_until, ray_auth_env`)


def short_temp_dir(prefix: str) -> Path:
    """A fresh folder under /tmp: Ray's unix socket paths must stay under ~107 characters."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@contextlib.contextmanager
def ray_auth_env(env: dict[str, str]) -> Iterator[None]:
    """Set a cluster's auth variables in this process for the block, and make Ray's C++ layer see them.

    Ray caches the auth mode and token per process; without the refresh on the way out, the next test's
    embedded `ray.init(address="local")` would present this cluster's token to its own new cluster.
    """
    from mritune.platform.infra.cluster import refresh_ray_auth_state

    saved = {key: os.environ.get(key) for key in (*env, "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")}
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.pop("RAY_ADDRESS", None)
    os.environ.update(env)
    refresh_ray_auth_state()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        refresh_ray_auth_state()


# ---------------------------------------------------------------------------------------------------------------
# Ray


@contextlib.contextmanager
def running_ray_cluster(*, cpus_per_node: tuple[int, ...], name: str) -> Iterator[RayCluster]:
    """A head (first entry of cpus_per_node) plus worker nodes, token auth on, all on 127.0.0.1.

    A node gives up when its raylet has not registered within Ray's fixed 30 s, which happens on this shared,
    overloaded machine; the cluster is then started once more, on fresh ports, before the fixture fails.
    """
    for attempt in range(1, CLUSTER_START_ATTEMPTS + 1):
        processes: list[subprocess.Popen] = []
        cluster = _new_cluster_settings(cpus_per_node, name)
        try:
            try:
                _start_nodes(cluster, cpus_per_node, processes)
            except RuntimeError:  # a node exited while starting; TimeoutError (hung) is not retried
                if attempt == CLUSTER_START_ATTEMPTS:
                    raise
                continue
            yield cluster
            return
        finally:
            stop_session(*processes)
            shutil.rmtree(cluster.temp_dir, ignore_errors=True)


def _new_cluster_settings(cpus_per_node: tuple[int, ...], name: str) -> RayCluster:
    token = secrets.token_hex(32)
    gcs_port, dashboard_port = free_ports(2)
    return RayCluster(
        gcs_address=f"127.0.0.1:{gcs_port}", dashboard_url=f"http://127.0.0.1:{dashboard_port}", token=token,
        env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}, num_nodes=len(cpus_per_node),
        temp_dir=short_temp_dir(f"mrt-{name}-"),
    )


def _start_nodes(cluster: RayCluster, cpus_per_node: tuple[int, ...], processes: list[subprocess.Popen]) -> None:
    env = ray_node_env(cluster.env)
    gcs_port = int(cluster.gcs_address.rsplit(":", 1)[1])
    dashboard_port = int(cluster.dashboard_url.rsplit(":", 1)[1])
    for index, num_cpus in enumerate(cpus_per_node):
        # A temp dir per node, as on separate machines (and in `mritune cluster local`): nodes sharing one also share
        # the unpacked runtime_env packages, and one node's cleanup deletes a job's working_dir under the other.
        command = ray_node_command(head=index == 0, gcs_port=gcs_port, num_cpus=num_cpus,
                                   temp_dir=cluster.temp_dir / f"n{index}", dashboard_port=dashboard_port)
        log = cluster.temp_dir / f"node{index}.log"
        processes.append(start_in_new_session(command, env=env, log=log))
        wait_until(lambda: alive_ray_nodes(cluster.dashboard_url, cluster.token) >= index + 1,
                   timeout_s=RAY_START_TIMEOUT_S, what=f"Ray node {index} coming up", process=processes[-1], log=log)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayCluster]:
    """A one-node `ray start --head` cluster (2 CPUs, no GPU) with token authentication and its dashboard."""
    with running_ray_cluster(cpus_per_node=(2,), name="head") as cluster:
        yield cluster


@pytest.fixture(scope="session")
def two_node_cluster() -> Iterator[RayCluster]:
    """A head and a second `ray start --address` node on this machine, 1 CPU each, token auth on.

    Session scope, like ray_head: starting the pair costs 20-80 s here, idling it about 9% of one core.
    """
    with running_ray_cluster(cpus_per_node=(1, 1), name="two") as cluster:
        yield cluster


# ---------------------------------------------------------------------------------------------------------------
# MLflow


def start_mlflow_server(root: Path, port: int) -> subprocess.Popen:
    """An `mlflow server` on 127.0.0.1:``port`` over ``root``'s SQLite store and artifacts, answering /health;
    started again with the same arguments it serves the same runs (a restart). Stop it with ``stop_session``."""
    url = f"http://127.0.0.1:{port}"
    command = [
        _console_script("mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
    ]
    env = {**{key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}, **MLFLOW_SERVER_ENV}
    log = root / "server.log"
    process = start_in_new_session(command, env=env, log=log)
    try:
        wait_until(lambda: mlflow_healthy(url), timeout_s=MLFLOW_START_TIMEOUT_S, what="mlflow server coming up",
                   process=process, log=log)
    except BaseException:
        stop_session(process)
        raise
    return process


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[str]:
    """An `mlflow server` on 127.0.0.1 (SQLite backend, local artifact store); yields its http:// URL.

    Shared by the whole session (starting it costs 20-90 s here): tests use experiment names of their own.
    """
    root = tmp_path_factory.mktemp("mlflow-server")
    (port,) = free_ports(1)
    process = start_mlflow_server(root, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_session(process)


# ---------------------------------------------------------------------------------------------------------------
