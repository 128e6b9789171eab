"""Ray connection: embedded local Ray or joining a cluster, and the checks made before the first trial.

`connect_ray` starts Ray inside this process (the default) or joins a running cluster (`--address`, or the
`RAY_ADDRESS` a Ray Job sets for its driver). Joining fails fast with a one-line `ConnectionError` or
`PermissionError` instead of Ray's own 20-second retry loop (or its silent hang on a closed port).
`check_resources` and `require_remote_tracking` refuse a search that could never run or never record.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

from mritune.platform.infra.errors import first_line
from mritune.trainables.errors import AccessDenied, ServiceUnavailable, UserInputError

# How long a TCP connect to the GCS may take before the address counts as unreachable.
REACHABILITY_TIMEOUT_S = 3.0

MLFLOW_SERVER_COMMAND = (
    "mlflow server --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///mlruns.db "
    "--artifacts-destination ./mlartifacts"
)


@dataclass(frozen=True, kw_only=True)
class NodeResources:
    """One alive node of the cluster and what it offers."""

    node_id: str
    ip: str
    cpu: float
    gpu: float


@dataclass(frozen=True, kw_only=True)
class ClusterInfo:
    """What the driver is connected to."""

    address: str
    embedded: bool
    num_nodes: int
    total_cpu: float
    total_gpu: float
    nodes: tuple[NodeResources, ...]

    @property
    def node_ips(self) -> frozenset[str]:
        return frozenset(node.ip for node in self.nodes)


def connect_ray(address: str | None, *, num_cpus: int | None = None, runtime_env: dict | None = None,
                logging_level: int = logging.INFO) -> ClusterInfo:
    """Start embedded Ray (address None and no RAY_ADDRESS) or join the cluster at `address`.

    An existing connection in this process is reused as it is. A driver joining a cluster never passes
    num_cpus (Ray refuses it); `num_cpus` only sizes the embedded instance. `runtime_env` is this driver's
    job-level environment for its workers (console.worker_runtime_env: quiet trial logs); `logging_level` that of
    Ray's own logger in this driver (WARNING in the quiet console: no "Started a local Ray instance").
    """
    import ray

    if ray.is_initialized():
        return describe_cluster()
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target is None:
        # Token authentication, as Ray chooses for a new local instance when RAY_AUTH_MODE is unset (and then sets
        # in os.environ itself), said before Ray reads it so Ray does not warn about its default on every search;
        # a RAY_AUTH_MODE the user set wins.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    refresh_ray_auth_state()
    if target is None:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, runtime_env=runtime_env,
                 logging_level=logging_level)
        return describe_cluster()
    _check_joinable(target)
    try:
        ray.init(address=target, runtime_env=runtime_env, logging_level=logging_level)
    except ConnectionError as exc:
        raise ServiceUnavailable(f"could not join the Ray cluster at {target}: {first_line(exc)}") from None
    return describe_cluster()


def disconnect() -> None:
    """Leave the cluster (or stop embedded Ray) and forget cached auth state so the next connect sees the env."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    refresh_ray_auth_state()


def describe_cluster() -> ClusterInfo:
    """The connected cluster's alive nodes and their resources."""
    import ray
    from ray._private import worker

    nodes = tuple(
        NodeResources(
            node_id=node["NodeID"],
            ip=node["NodeManagerAddress"],
            cpu=float(node["Resources"].get("CPU", 0.0)),
            gpu=float(node["Resources"].get("GPU", 0.0)),
        )
        for node in ray.nodes()
        if node.get("Alive")
    )
    global_node = worker._global_node
    return ClusterInfo(
        address=ray.get_runtime_context().gcs_address,
        embedded=bool(getattr(global_node, "ray_init_cluster", False)),
        num_nodes=len(nodes),
        total_cpu=sum(node.cpu for node in nodes),
        total_gpu=sum(node.gpu for node in nodes),
        nodes=nodes,
    )


def check_resources(*, cpu: float, gpu: float, cluster: ClusterInfo) -> None:
    """Refuse a per-trial request no node can satisfy: Tune would otherwise leave the trials pending for ever."""
    if cpu < 0 or gpu < 0:
        raise UserInputError(f"resources: cpu ({cpu}) and gpu ({gpu}) per trial must be zero or more")
    largest_cpu = max((node.cpu for node in cluster.nodes), default=0.0)
    largest_gpu = max((node.gpu for node in cluster.nodes), default=0.0)
    if gpu > 0 and cluster.total_gpu == 0:
        raise UserInputError(
            f"resources.gpu: {gpu:g} GPU per trial requested but the cluster has no GPU; "
            "set resources.gpu: 0 or add GPU workers"
        )
    if gpu > largest_gpu:
        raise UserInputError(
            f"resources.gpu: {gpu:g} GPUs per trial requested but the largest node has {largest_gpu:g}; "
            f"set resources.gpu to at most {largest_gpu:g} or add bigger GPU workers"
        )
    if cpu > largest_cpu:
        raise UserInputError(
            f"resources.cpu: {cpu:g} CPUs per trial requested but the largest node has {largest_cpu:g}; "
            f"set resources.cpu to at most {largest_cpu:g} or add bigger workers"
        )


def require_remote_tracking(tracking_uri: str, cluster: ClusterInfo) -> None:
    """On a cluster of several nodes, trials on other nodes must reach MLflow over HTTP.

    Workers elsewhere cannot write the driver's SQLite file or local folder, and a loopback URL only works
    while every node runs on the driver's machine.
    """
    if cluster.num_nodes <= 1:
        return
    parsed = urlparse(tracking_uri)
    how_to = (
        f"start one with `{MLFLOW_SERVER_COMMAND}` (use a --host the workers can reach) "
        "and pass --tracking-uri http://HOST:5000"
    )
    if parsed.scheme not in ("http", "https"):
        raise UserInputError(
            f"tracking URI {tracking_uri!r} is local but the cluster has {cluster.num_nodes} nodes whose "
            f"trials cannot write it; use an MLflow server over HTTP: {how_to}"
        )
    if _is_loopback(parsed.hostname or "") and len(cluster.node_ips) > 1:
        raise UserInputError(
            f"tracking URI {tracking_uri!r} points at this machine's loopback but nodes run on "
            f"{', '.join(sorted(cluster.node_ips))}; use an address the workers can reach: {how_to}"
        )


def refresh_ray_auth_state() -> None:
    """Make Ray's C++ layer re-read RAY_AUTH_MODE and the token from the environment and ~/.ray/auth_token.

    Ray caches both for the life of the process, so without this a second connection in the same process
    (another cluster, another token) silently keeps using the first token.
    """
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _check_joinable(address: str) -> None:
    """Fail in seconds, with the fix, where ray.init would hang or retry for 20 s."""
    parsed = urlparse(address if "://" in address else f"gcs://{address}")
    if parsed.scheme in ("http", "https"):
        raise UserInputError(
            f"--address {address} is a dashboard/job-submission URL; to run there use `mritune submit CONFIG "
            f"--address {address}`, or join the cluster with its GCS address HOST:6379"
        )
    if address == "auto":
        return
    if not parsed.hostname or not parsed.port:
        raise UserInputError(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, the head's GCS address)")
    _check_reachable(parsed.hostname, parsed.port, address)
    if parsed.scheme == "gcs":
        _check_gcs_auth(f"{parsed.hostname}:{parsed.port}")


def _check_reachable(host: str, port: int, address: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=REACHABILITY_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ServiceUnavailable(
            f"no Ray cluster reachable at {address} ({exc.strerror or exc}); start the head with "
            "`ray start --head` or check --address / RAY_ADDRESS"
        ) from None


def _check_gcs_auth(address: str) -> None:
    """Ask the GCS for its cluster id once: a token problem shows here at once, not after 20 retries."""
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    try:
        GcsClient(address=address)
    except AuthenticationError:
        raise AccessDenied(_token_advice(address)) from None


def _token_advice(address: str) -> str:
    mode = os.environ.get("RAY_AUTH_MODE", "")
    has_token = bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"))
    if mode.lower() != "token":
        return (
            f"the Ray cluster at {address} requires token authentication; set RAY_AUTH_MODE=token and the "
            "cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token (`ray get-auth-token` on the head prints it)"
        )
    if not has_token:
        return (
            f"the Ray cluster at {address} rejected this machine's token (or none was found); set RAY_AUTH_TOKEN "
            "or ~/.ray/auth_token to the head's token (`ray get-auth-token` on the head prints it)"
        )
    return (
        f"the Ray cluster at {address} rejected the token from RAY_AUTH_TOKEN/RAY_AUTH_TOKEN_PATH; "
        "use the head's token (`ray get-auth-token` on the head prints it)"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
