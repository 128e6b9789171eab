"""Everyday commands: `mritune --version`, `mritune ui` (a real MLflow UI, stopped by pid) and switching the
searcher with one --set."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from mritune.platform.infra.processes import live_session_pids
from tests.fixtures_processes import free_ports, stop_session, wait_until

ROOT = Path(__file__).resolve().parents[2]
MRITUNE = str(Path(sys.executable).with_name("mritune"))


def test_version_is_the_installed_packages():
    done = subprocess.run([MRITUNE, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"mritune {importlib.metadata.version('mritune')}"


def test_ui_serves_the_default_store_links_the_latest_search_and_stops_its_server_on_ctrl_c(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")  # the store `mritune search` writes by default
    experiment_id = client.create_experiment("mritune-classifier")
    client.create_run(experiment_id, run_name="older", tags={"mritune.role": "search"}, start_time=1000)
    latest = client.create_run(experiment_id, run_name="classifier-quick", tags={"mritune.role": "search"},
                               start_time=2000)
    client.create_run(experiment_id, run_name="#1", tags={"mritune.role": "trial"}, start_time=3000)
    port, = free_ports(1)
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    out = tmp_path / "ui.out"
    ui = subprocess.Popen([MRITUNE, "ui", "--port", str(port)], cwd=tmp_path, env=env, start_new_session=True,
                          stdout=out.open("w"), stderr=subprocess.STDOUT)
    try:
        text = wait_until(lambda: "Latest search" in out.read_text() and out.read_text(), timeout_s=180,
                          what="mritune ui's links", process=ui, log=out)
        url = f"http://127.0.0.1:{port}"
        assert f"Latest search classifier-quick: {url}/#/experiments/{experiment_id}/runs/{latest.info.run_id}" in text
        with urllib.request.urlopen(url + "/", timeout=10) as page:
            assert page.status == 200 and b"MLflow" in page.read()
        api = f"{url}/ajax-api/2.0/mlflow/runs/get?run_id={latest.info.run_id}"
        with urllib.request.urlopen(api, timeout=10) as answer:  # the UI reads the store the runs are in
            assert json.load(answer)["run"]["info"]["run_name"] == "classifier-quick"
        server_pid = int(re.search(r"MLflow UI \(pid (\d+)\)", text).group(1))
        assert live_session_pids(server_pid), "the UI server runs in a session of its own"
        assert not [pid for pid in live_session_pids(server_pid) if "huey" in _cmdline(pid)], \
            "no MLflow job runner beside the UI"
        os.kill(ui.pid, signal.SIGINT)  # Ctrl-C
        assert ui.wait(timeout=60) == 0, out.read_text()
        assert not live_session_pids(server_pid), "Ctrl-C stopped the UI server's whole session"
        assert "stopping the MLflow UI" in out.read_text()
    finally:
        stop_session(ui)


def test_one_set_switches_the_searcher_and_drops_the_other_searchers_options():
    spec = str(ROOT / "configs" / "classifier-quick.yaml")
    switched = subprocess.run([MRITUNE, "search", spec, "--set", "search.algorithm=random", "--dry-run"],
                              capture_output=True, text=True, timeout=300)
    assert switched.returncode == 0, switched.stderr[-2000:]
    assert ("note: --set search.algorithm=random: dropped the gpyopt option(s) acquisition, pending_strategy, "
            "which random does not take") in switched.stderr
    assert "random" in switched.stdout
    explicit = subprocess.run([MRITUNE, "search", spec, "--set", "search.algorithm=random", "--set",
                               "search.options.acquisition=EI", "--dry-run"], capture_output=True, text=True,
                              timeout=300)
    assert explicit.returncode == 2
    assert "search.options.acquisition: unknown option for searcher 'random'" in explicit.stderr


def test_switching_keeps_the_options_the_new_searcher_takes():
    from mritune.platform.spec.config import apply_overrides

    raw = {"search": {"algorithm": "gpyopt", "options": {"acquisition": "LCB", "n_initial_points": 3}}}
    assert apply_overrides(raw, ["search.algorithm=bayesopt"])["search"]["options"] == {"acquisition": "LCB",
                                                                                       "n_initial_points": 3}
    assert apply_overrides(raw, ["search.algorithm=tpe"])["search"]["options"] == {"n_initial_points": 3}
    assert apply_overrides(raw, ["search.num_samples=2"])["search"]["options"] == raw["search"]["options"]
    assert raw["search"]["options"] == {"acquisition": "LCB", "n_initial_points": 3}, "the input is not changed"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except FileNotFoundError:  # ended between listing and reading
        return ""
