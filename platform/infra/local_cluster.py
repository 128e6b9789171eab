"""`mritune cluster local`: a whole cluster on this machine, to rehearse the path to a real one.

`up` starts, all bound to 127.0.0.1: PostgreSQL, an `mlflow server` on it (proxied artifacts, basic-auth), a
SeaweedFS S3 endpoint for trial storage, a Ray head and N Ray worker nodes (token auth, each node with a temp
dir of its own, so nothing passes between nodes through a shared folder). Every started process is written to
the state file as it starts, so `down` stops exactly those processes, by pid, even after a failed `up`; it never
runs `ray stop` (which stops every Ray on the machine).

The secrets `up` makes (Ray token, MLflow admin password, S3 keys, database password) stay in the state folder,
readable by its owner only; `up` prints the environment to export (``source <state dir>/env.sh``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from mritune.platform.infra import local_services as services
from mritune.platform.infra.processes import (
    ServiceProcess,
    free_ports,
    start_in_new_session,
    stop_sessions,
    wait_until,
)
from mritune.trainables.errors import MissingInputError, UserInputError

STATE_FILE = "state.json"
ENV_FILE = "env.sh"
# Services that others depend on are stopped last: the MLflow server holds connections to PostgreSQL.
_STOP_LAST = ("postgres", "seaweedfs")
SEAWEEDFS_GRACE_S = 5.0


@dataclass(frozen=True, kw_only=True)
class LocalCluster:
    """What `up` started: addresses, the environment to export, and the processes `down` stops."""

    state_dir: str
    ray_address: str  # the head's GCS address, for `mritune search --address`
    dashboard_url: str  # for `mritune submit --address`
    tracking_uri: str
    storage_path: str
    workers: int
    env: dict[str, str] = field(repr=False)  # holds the secrets; never logged
    processes: tuple[ServiceProcess, ...] = ()
    temp_dirs: tuple[str, ...] = ()

    def summary(self) -> dict:
        """What `up --json` prints: the four addresses and the environment to export."""
        return {"ray_address": self.ray_address, "dashboard_url": self.dashboard_url,
                "tracking_uri": self.tracking_uri, "storage_path": self.storage_path,
                "env": dict(self.env), "env_file": str(Path(self.state_dir) / ENV_FILE)}


def default_state_dir() -> Path:
    """``$MRITUNE_CLUSTER_DIR``, else ``~/.mritune/cluster-local``."""
    return Path(os.environ.get("MRITUNE_CLUSTER_DIR") or Path.home() / ".mritune" / "cluster-local")


def up(*, workers: int = 2, cpus_per_node: int = 1, state_dir: Path | None = None) -> LocalCluster:
    """Start the local cluster and return what it is; `down` stops it.

    Args:
        workers: Ray worker nodes besides the head (0 or more).
        cpus_per_node: CPUs each Ray node offers (head included).
        state_dir: Where the state file, the secrets and the services' data live; default `default_state_dir()`.

    Raises:
        ValueError: A bad count, or a local cluster from this state folder is still up.
        FileNotFoundError: PostgreSQL or SeaweedFS (`weed`) is not installed.
        TimeoutError, RuntimeError: A service did not come up (what was started is stopped again).

    Example:
        >>> cluster = up(workers=2)  # doctest: +SKIP
        >>> cluster.summary()["tracking_uri"]  # doctest: +SKIP
        'http://127.0.0.1:41234'
    """
    if workers < 0 or cpus_per_node < 1:
        raise UserInputError(f"--workers ({workers}) must be 0 or more and --cpus-per-node ({cpus_per_node}) 1 or more")
    root = (state_dir or default_state_dir()).expanduser().resolve()
    if any(process.is_alive() for process in _read_processes(root)):
        raise UserInputError(f"a local cluster from {root} is still up; stop it first: mritune cluster local down")
    _reset_state_dir(root)
    # A missing PostgreSQL or SeaweedFS is one line before anything starts.
    services.postgres_binary("initdb")
    services.weed_binary()
    cluster, plan = _plan(root, workers)
    try:
        return _start_all(cluster, cpus_per_node, plan)
    except BaseException:
        down(state_dir=root)
        raise


def status(*, state_dir: Path | None = None) -> dict:
    """Each recorded process and whether it still runs, plus the Ray nodes alive and the MLflow server's health.

    Raises:
        FileNotFoundError: No local cluster was started from this state folder.
    """
    cluster = load(state_dir)
    processes = {f"{process.name} (pid {process.pid})": process.is_alive() for process in cluster.processes}
    return {"ray_address": cluster.ray_address, "dashboard_url": cluster.dashboard_url,
            "tracking_uri": cluster.tracking_uri, "storage_path": cluster.storage_path,
            "ray_nodes_alive": services.alive_ray_nodes(cluster.dashboard_url, cluster.env["RAY_AUTH_TOKEN"]),
            "mlflow_healthy": services.mlflow_healthy(cluster.tracking_uri), "processes": processes}


def down(*, state_dir: Path | None = None) -> list[int]:
    """Stop exactly the processes `up` recorded (by pid, checking each is still the process started) and remove
    the state folder and the temp folders. Returns the pids that were stopped.

    Raises:
        FileNotFoundError: No local cluster was started from this state folder.
    """
    root = (state_dir or default_state_dir()).expanduser().resolve()
    if not (root / STATE_FILE).is_file():
        raise MissingInputError(f"no local cluster state in {root}; start one with: mritune cluster local up")
    state = json.loads((root / STATE_FILE).read_text())
    alive = [process for process in _read_processes(root) if process.is_alive()]
    first = [process.pid for process in alive if process.name not in _STOP_LAST]
    last = [process.pid for process in alive if process.name in _STOP_LAST]
    if first:
        stop_sessions(first)
    if last:  # SeaweedFS waits out a long shutdown on SIGTERM; its data is removed with the state folder anyway
        stop_sessions(last, grace_s=SEAWEEDFS_GRACE_S)
    for folder in state.get("temp_dirs", []):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    return first + last


def load(state_dir: Path | None = None) -> LocalCluster:
    """The cluster recorded in the state folder.

    Raises:
        FileNotFoundError: No state file there.
    """
    root = (state_dir or default_state_dir()).expanduser().resolve()
    if not (root / STATE_FILE).is_file():
        raise MissingInputError(f"no local cluster state in {root}; start one with: mritune cluster local up")
    state = json.loads((root / STATE_FILE).read_text())
    state["processes"] = tuple(ServiceProcess(**process) for process in state["processes"])
    state["temp_dirs"] = tuple(state["temp_dirs"])
    state.pop("secrets", None)
    return LocalCluster(**state)


# ---------------------------------------------------------------------------------------------------------------


def _plan(root: Path, workers: int) -> tuple[LocalCluster, dict]:
    """Ports, secrets and folders, chosen before anything starts; written to the state file at once."""
    gcs, dashboard, mlflow = free_ports(3)
    ray_token = secrets.token_hex(32)
    username = os.environ.get("MLFLOW_TRACKING_USERNAME") or "admin"
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD") or secrets.token_urlsafe(18)
    env = {
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": ray_token, "RAY_ADDRESS": f"127.0.0.1:{gcs}",
        "RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{dashboard}",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow}",
        "MLFLOW_TRACKING_USERNAME": username, "MLFLOW_TRACKING_PASSWORD": password,
        "AWS_ACCESS_KEY_ID": secrets.token_hex(10), "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
    }
    # Short folders under /tmp: Ray's unix socket paths must stay under ~107 characters, and PostgreSQL run as
    # the `postgres` user (when this is root) cannot enter root's home.
    temp = Path(tempfile.mkdtemp(prefix="mrt-local-", dir="/tmp"))
    temp.chmod(0o755)
    cluster = LocalCluster(
        state_dir=str(root), ray_address=env["RAY_ADDRESS"], dashboard_url=env["RAY_API_SERVER_ADDRESS"],
        tracking_uri=env["MLFLOW_TRACKING_URI"], storage_path="", workers=workers,  # storage_path: once SeaweedFS is up
        env=env, temp_dirs=(str(temp),),
    )
    plan = {"postgres_password": secrets.token_urlsafe(18), "flask": secrets.token_hex(16), "gcs_port": gcs,
            "dashboard_port": dashboard, "mlflow_port": mlflow}
    _write_state(cluster, plan)
    return cluster, plan


def _start_all(cluster: LocalCluster, cpus_per_node: int, plan: dict) -> LocalCluster:
    root, temp, env = Path(cluster.state_dir), Path(cluster.temp_dirs[0]), cluster.env
    postgres_port = free_ports(1)[0]
    cluster = _started(cluster, plan, "postgres", services.start_postgres(
        data_dir=temp / "postgres", port=postgres_port, password=plan["postgres_password"], log=root / "postgres.log"))
    seaweedfs, s3_port = services.start_seaweedfs(
        data_dir=root / "seaweedfs", access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"],
        log=root / "seaweedfs.log")
    cluster = replace(cluster, storage_path=services.s3_storage_uri(s3_port))
    cluster = _started(cluster, plan, "seaweedfs", seaweedfs)
    cluster = _started(cluster, plan, "mlflow", services.start_mlflow_server(
        port=plan["mlflow_port"], postgres_port=postgres_port, postgres_password=plan["postgres_password"],
        artifacts=root / "mlartifacts", admin_username=env["MLFLOW_TRACKING_USERNAME"],
        admin_password=env["MLFLOW_TRACKING_PASSWORD"], secret_key=plan["flask"], root=root, log=root / "mlflow.log"))
    node_env = services.ray_node_env({key: value for key, value in env.items()
                                      if key not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")})
    for index in range(cluster.workers + 1):
        command = services.ray_node_command(
            head=index == 0, gcs_port=plan["gcs_port"], num_cpus=cpus_per_node, temp_dir=temp / f"ray{index}",
            dashboard_port=plan["dashboard_port"])
        log = root / f"ray-node{index}.log"
        process = start_in_new_session(command, env=node_env, log=log)
        cluster = _started(cluster, plan, "ray-head" if index == 0 else f"ray-worker{index}", process)
        wait_until(lambda: services.alive_ray_nodes(cluster.dashboard_url, env["RAY_AUTH_TOKEN"]) > index,
                   timeout_s=services.START_TIMEOUT_S, what=f"Ray node {index} coming up", process=process, log=log)
    return cluster


def _started(cluster: LocalCluster, plan: dict, name: str, process) -> LocalCluster:
    """Record a started process in the state file at once, so `down` finds it even if a later start fails."""
    cluster = replace(cluster, processes=(*cluster.processes, ServiceProcess.of(name, process)))
    _write_state(cluster, plan)
    return cluster


def _write_state(cluster: LocalCluster, plan: dict) -> None:
    root = Path(cluster.state_dir)
    state = {**asdict(cluster), "secrets": plan}
    for name, text in ((STATE_FILE, json.dumps(state, indent=2)),
                       (ENV_FILE, "".join(f"export {key}='{value}'\n" for key, value in cluster.env.items()))):
        path = root / name
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(text)


def _read_processes(root: Path) -> list[ServiceProcess]:
    if not (root / STATE_FILE).is_file():
        return []
    return [ServiceProcess(**process) for process in json.loads((root / STATE_FILE).read_text())["processes"]]


def _reset_state_dir(root: Path) -> None:
    """A fresh state folder, owner-only (it holds the secrets); a stopped cluster's leftovers are removed."""
    if (root / STATE_FILE).is_file():
        down(state_dir=root)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
