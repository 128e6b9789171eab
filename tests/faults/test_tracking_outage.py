"""Fault scenario 4: the MLflow server stopped for 60 s mid-search, then started again on the same store.

Trials keep training meanwhile (their MLflow calls wait in each trial's bounded buffer and retry), and when the
server is back every epoch is in the store once: nothing is dropped silently.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.faults.checker import assert_nothing_lost, record_scenario, tune_trial_ids
from tests.fixtures_processes import free_ports, start_mlflow_server, stop_session, wait_until
from tests.platform.search_helpers import tiny_spec

OUTAGE_S = 60
EPOCHS = 8


def _outage(url: str, experiment_id: str, server: dict, window: dict) -> None:
    """Once a trial has logged epoch 1: stop the server, keep it down OUTAGE_S seconds, start it again."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    wait_until(lambda: client.search_runs([experiment_id], "metrics.epoch >= 1"), timeout_s=600,
               what="a trial's first epoch in MLflow", interval_s=0.5)
    stop_session(server["process"])
    window["down"] = time.time()
    time.sleep(OUTAGE_S)  # the injected fault itself: how long the server stays away, not a wait for a condition
    server["process"] = start_mlflow_server(server["root"], server["port"])
    window["up"] = time.time()


@pytest.mark.slow  # the outage alone is 60 s
def test_a_search_survives_the_tracking_server_down_for_a_minute(local_ray, tmp_path):
    from mritune.platform.run.runner import run_search
    from mritune.platform.tracking.trial_runs import ensure_experiment

    (port,) = free_ports(1)
    server = {"root": tmp_path / "mlflow", "port": port}
    server["root"].mkdir()
    server["process"] = start_mlflow_server(server["root"], port)
    url = f"http://127.0.0.1:{port}"
    try:
        spec = tiny_spec(tmp_path, overrides=(
            "search.num_samples=2", "search.max_concurrent=2", "search.algorithm=random", "scheduler.name=fifo",
            f"scheduler.max_t={EPOCHS}",
            "data.synthetic.n=600", f"tracking.uri={url}"))
        experiment_id = ensure_experiment(spec.experiment, url)
        window: dict = {}
        injector = threading.Thread(target=_outage, args=(url, experiment_id, server, window), daemon=True)
        injector.start()
        outcome = run_search(spec)
        injector.join(timeout=OUTAGE_S + 300)
        assert window.get("up"), "the outage did not finish during the search"

        assert outcome.status == "FINISHED", outcome.status_reason
        summary = assert_nothing_lost(url, outcome.parent_run_id, parent_status="FINISHED",
                                      trial_ids=tune_trial_ids(outcome.experiment_path))
        assert summary["runs"] == 2 and summary["epochs_logged"] == 2 * EPOCHS and summary["runs_lost"] == 0
        # Not asserted (measured: 1 of 2 runs showed it): whether a trial trained on during the outage. A trial's
        # first epoch waits for its run to open, so a trial starting during the outage waits for the server.
        written = [folder.stat().st_mtime for folder in Path(outcome.experiment_path).glob("*/checkpoint_*")]
        during = sum(window["down"] < mtime < window["up"] for mtime in written)
        record_scenario(4, {"injected": f"mlflow server stopped {OUTAGE_S} s after a trial's first epoch, then "
                            "restarted on the same store", "checkpoints_stored_during_outage": during,
                            "epochs_logged": summary["epochs_logged"], "runs_lost": summary["runs_lost"],
                            "search_finished_s_after_restart": round(time.time() - window["up"], 1),
                            "epochs_redone": 0})
    finally:
        stop_session(server["process"])
