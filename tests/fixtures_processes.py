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
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Generous: five engineers share two cores, and under that load a Ray node or `mlflow server` (database
# migrations, then uvicorn) has been seen to take 70-90 s to come up.
RAY_START_TIMEOUT_S = 180.0
MLFLOW_START_TIMEOUT_S = 240.0
CLUSTER_START_ATTEMPTS = 2
STOP_GRACE_S = 15.0
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


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free right now on 127.0.0.1 (all held open together so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def short_temp_dir(prefix: str) -> Path:
    """A fresh folder under /tmp: Ray's unix socket paths must stay under ~107 characters."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def wait_until(condition: Callable[[], object], *, timeout_s: float, what: str,
               process: subprocess.Popen | None = None, log: Path | None = None, interval_s: float = 0.25):
    """Poll `condition` until it returns something truthy; fail with `what` (and the log's tail) at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {process.returncode}{_log_tail(log)}")
        time.sleep(interval_s)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s{_log_tail(log)}")


def start_in_new_session(command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def stop_session(*processes: subprocess.Popen) -> None:
    """Stop every process of the sessions these processes lead: SIGTERM to each leader, a grace period, SIGKILL.

    `ray start --block` shuts its node down in order on SIGTERM (about 3 s); signalling every process at once
    is slower, because gcs_server and raylet then wait out their own timeouts. Several sessions are stopped
    together so their grace periods overlap.
    """
    sessions = [process.pid for process in processes]
    for session in sessions:
        _signal(session, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline and any(_live_session_pids(session) for session in sessions):
        time.sleep(0.2)
    for session in sessions:
        for pid in _live_session_pids(session):
            _signal(pid, signal.SIGKILL)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_S)


@contextlib.contextmanager
def ray_auth_env(env: dict[str, str]) -> Iterator[None]:
    """Set a cluster's auth variables in this process for the block, and make Ray's C++ layer see them.

    Ray caches the auth mode and token per process; without the refresh on the way out, the next test's
    embedded `ray.init(address="local")` would present this cluster's token to its own new cluster.
    """
    from mritune.platform.cluster import refresh_ray_auth_state

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


def _ray_node_command(*, head: bool, gcs_port: int, ports: list[int], num_cpus: int, temp_dir: Path,
                      dashboard_port: int | None = None) -> list[str]:
    agent_listen, agent_grpc, metrics, runtime_env_agent, node_manager, object_manager, client_server = ports
    command = [
        _console_script("ray"), "start", "--block", "--disable-usage-stats",
        "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}", "--num-gpus=0",
        f"--dashboard-agent-listen-port={agent_listen}", f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env_agent}",
        f"--node-manager-port={node_manager}", f"--object-manager-port={object_manager}",
        f"--temp-dir={temp_dir}",
    ]
    if head:
        command += ["--head", f"--port={gcs_port}", "--dashboard-host=127.0.0.1",
                    f"--dashboard-port={dashboard_port}", f"--ray-client-server-port={client_server}"]
    else:
        command += [f"--address=127.0.0.1:{gcs_port}"]
    return command


def _alive_nodes(dashboard_url: str, token: str) -> int:
    import requests

    try:
        answer = requests.get(f"{dashboard_url}/api/v0/nodes", headers={"Authorization": f"Bearer {token}"},
                              timeout=5)
    except requests.exceptions.RequestException:
        return 0
    if answer.status_code != 200:
        return 0
    nodes = answer.json().get("data", {}).get("result", {}).get("result", [])
    return sum(1 for node in nodes if node.get("state") == "ALIVE")


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
    # The venv's bin first on PATH: job entrypoints such as `python -c ...` or `mritune search` must find it.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    # No idle workers started ahead of need: they only add load while the nodes come up.
    env = {**cluster.subprocess_env(), "RAY_USAGE_STATS_ENABLED": "0", "PATH": path,
           "RAY_enable_worker_prestart": "0", "RAY_prestart_worker_first_driver": "0"}
    gcs_port = int(cluster.gcs_address.rsplit(":", 1)[1])
    dashboard_port = int(cluster.dashboard_url.rsplit(":", 1)[1])
    for index, num_cpus in enumerate(cpus_per_node):
        command = _ray_node_command(head=index == 0, gcs_port=gcs_port, ports=free_ports(7), num_cpus=num_cpus,
                                    temp_dir=cluster.temp_dir, dashboard_port=dashboard_port)
        log = cluster.temp_dir / f"node{index}.log"
        processes.append(start_in_new_session(command, env=env, log=log))
        wait_until(lambda: _alive_nodes(cluster.dashboard_url, cluster.token) >= index + 1,
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


def _mlflow_healthy(url: str) -> bool:
    import requests

    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.exceptions.RequestException:
        return False


def start_mlflow_server(root: Path, port: int) -> subprocess.Popen:
    """An `mlflow server` on 127.0.0.1:``port`` over ``root``'s SQLite store and artifacts, answering /health;
    started again with the same arguments it serves the same runs (a restart). Stop it with ``stop_session``."""
    url = f"http://127.0.0.1:{port}"
    command = [
        _console_script("mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
    ]
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    log = root / "server.log"
    process = start_in_new_session(command, env=env, log=log)
    try:
        wait_until(lambda: _mlflow_healthy(url), timeout_s=MLFLOW_START_TIMEOUT_S, what="mlflow server coming up",
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


def _live_session_pids(session: int) -> list[int]:
    """Processes (not zombies) whose session id is `session`, read from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[3]) == session and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def _console_script(name: str) -> str:
    """The venv's own `ray` / `mlflow` executable, whatever PATH says."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"no `{name}` executable beside {sys.executable} or on PATH")
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    return "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
