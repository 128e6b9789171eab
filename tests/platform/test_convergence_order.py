"""The parent run's convergence plot puts trials in the order they started, not in the order of their random ids."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from mritune.platform.tracking.search_run import log_search_summary, trial_numbers, trials_in_start_order
from mritune.platform.tracking.tags import TRIAL_ID_TAG, TRIAL_NUMBER_TAG
from tests.mlflow_stores import sqlite_store

# Trial ids as Tune draws them (random hex): sorted by id they read c, a, b, d; they started a, b, c, d.
STARTED = [("f3a1", 0.40), ("07bc", 0.55), ("0a2e", 0.50), ("9d44", 0.70)]


def _search_with_trial_runs(tmp_path):
    client = MlflowClient(sqlite_store(tmp_path / "mlruns.db"))
    experiment_id = client.create_experiment("order")
    parent = client.create_run(experiment_id).info.run_id
    for number, (trial_id, _) in enumerate(STARTED, start=1):
        child = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent, TRIAL_ID_TAG: trial_id,
                                                      TRIAL_NUMBER_TAG: str(number)})
        client.set_terminated(child.info.run_id)
    return client, experiment_id, parent


def test_trials_are_ordered_by_the_number_their_runs_carry(tmp_path):
    client, experiment_id, parent = _search_with_trial_runs(tmp_path)
    numbers = trial_numbers(client, experiment_id, parent)
    assert numbers == {trial_id: n for n, (trial_id, _) in enumerate(STARTED, start=1)}
    table = sorted(({"trial_id": trial_id, "val": value} for trial_id, value in STARTED), key=lambda r: -r["val"])
    table.append({"trial_id": "0000", "val": None})  # a trial whose run never opened: after the numbered ones
    ordered = [row["trial_id"] for row in trials_in_start_order(table, numbers)]
    assert ordered == [trial_id for trial_id, _ in STARTED] + ["0000"]
    assert ordered != sorted(ordered), "the ids' own order differs, so the test can tell the two apart"


def test_the_summary_draws_its_plot_from_the_runs(tmp_path):
    client, experiment_id, parent = _search_with_trial_runs(tmp_path)
    table = [{"trial_id": trial_id, "status": "OK", "val": value, "config.lr": 0.1} for trial_id, value in STARTED]
    log_search_summary(tracking_uri=client.tracking_uri, parent_run_id=parent, table=table, metric="val",
                       mode="max", searcher_state=None)
    assert {a.path for a in client.list_artifacts(parent)} >= {"convergence.png", "results.csv", "best_config.yaml"}
