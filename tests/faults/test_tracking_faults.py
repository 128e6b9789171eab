"""Fault scenario 6: eight trial processes writing into one SQLite store at once lose no run and no metric.

Each process runs mritune's own trial observer (``MlflowTrialObserver``, as a Tune trial does) on the background
writer thread, through every epoch, into one ``sqlite:///`` store under one parent run.
"""

from __future__ import annotations

import multiprocessing

from tests.faults.checker import assert_nothing_lost
from tests.mlflow_stores import sqlite_store

WRITERS = 8
EPOCHS = 6


def _write_trial(factory, trial_id: str) -> None:
    """One trial's whole life as the observer sees it, in its own process."""
    from mritune.trainables.reporting import EpochReport

    observer = factory()
    observer.on_start({"epochs": EPOCHS, "learning_rate": 1e-3}, trial_id)
    for epoch in range(1, EPOCHS + 1):
        metrics = {"val_loss": 1.0 / epoch, "val_macro_f1": 0.1 * epoch, "val_accuracy": 0.5}
        observer.on_epoch(EpochReport(epoch=epoch, metrics=metrics))
    observer.on_end("FINISHED", None, None)


def test_eight_concurrent_writers_on_sqlite_lose_nothing(tmp_path):
    from mlflow.tracking import MlflowClient

    from mritune.platform.tracking.trial_runs import MlflowTrialObserverFactory, ensure_experiment

    uri = sqlite_store(tmp_path / "mlruns.db")
    experiment_id = ensure_experiment("fault-sqlite-writers", uri)
    client = MlflowClient(uri)
    parent = client.create_run(experiment_id, tags={"mritune.role": "search"})
    factory = MlflowTrialObserverFactory(tracking_uri=uri, experiment_id=experiment_id,
                                         parent_run_id=parent.info.run_id, search_name="fault-sqlite-writers",
                                         system_metrics=False)
    trial_ids = {f"trial_{index:05d}" for index in range(WRITERS)}
    # Fresh interpreters, like Ray's worker processes: forked from a clean server process (not from this one, with
    # TensorFlow's threads) that imported MLflow once, instead of eight spawned interpreters importing it each.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mlflow", "mritune.platform.tracking.trial_runs"])
    processes = [context.Process(target=_write_trial, args=(factory, trial_id)) for trial_id in sorted(trial_ids)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [process.exitcode for process in processes] == [0] * WRITERS
    client.set_terminated(parent.info.run_id, status="FINISHED")

    summary = assert_nothing_lost(uri, parent.info.run_id, trial_ids=trial_ids, parent_status="FINISHED")
    assert summary["epochs_logged"] == WRITERS * EPOCHS and summary["runs_lost"] == 0
