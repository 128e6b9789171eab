"""When the time budget ends a search, the driver closes the trial runs still RUNNING (``mritune.closed_by =
search_end``); a trial that is still stopping may end its run after that, and its own ending then stands.

Both writers are the real ones (the trial's MLflow observer, the driver's ``close_orphaned_runs``) on a real
SQLite store, in the two orders the race can take. In a search the trial's write comes from its Ray worker
process; Tune returns from ``fit`` without waiting for that process (seen in the time-budget end-to-end test under
load: a run tagged search_end that its trial then ended FINISHED).
"""

from __future__ import annotations

import pytest

from mritune.platform.tracking.search_run import close_orphaned_runs
from mritune.platform.tracking.tags import CLOSED_BY_TAG, ROLE_SEARCH, ROLE_TAG
from mritune.platform.tracking.trial_runs import MlflowTrialObserverFactory, child_runs, ensure_experiment
from mritune.trainables.reporting import EpochReport
from tests.mlflow_stores import sqlite_store


@pytest.fixture()
def search(tmp_path):
    """A search's parent run, and a trial's observer that has logged its first epoch (its run RUNNING)."""
    from mlflow.tracking import MlflowClient

    uri = sqlite_store(tmp_path / "mlruns.db")
    experiment_id = ensure_experiment("search-end", uri)
    client = MlflowClient(uri)
    parent_run_id = client.create_run(experiment_id, tags={ROLE_TAG: ROLE_SEARCH}).info.run_id
    factory = MlflowTrialObserverFactory(tracking_uri=uri, experiment_id=experiment_id, parent_run_id=parent_run_id,
                                         search_name="search-end", system_metrics=False)
    observer = factory()
    observer.on_start({"learning_rate": 0.01}, "trial-1")
    observer.on_epoch(EpochReport(epoch=1, metrics={"epoch": 1.0, "val_macro_f1": 0.5}))
    return client, uri, experiment_id, parent_run_id, observer


def _the_trial_run(client, experiment_id: str, parent_run_id: str):
    [run] = child_runs(client, experiment_id, parent_run_id)
    return run


def test_a_trial_ending_after_the_drivers_close_keeps_its_own_status_and_loses_the_mark(search):
    client, uri, experiment_id, parent_run_id, observer = search
    assert close_orphaned_runs(uri, experiment_id, parent_run_id, reason="search_end") == 1
    closed = _the_trial_run(client, experiment_id, parent_run_id)
    assert (closed.info.status, closed.data.tags.get(CLOSED_BY_TAG)) == ("KILLED", "search_end")

    observer.on_end("FINISHED", None, None)  # it had reported its last epoch when the budget ran out
    ended = _the_trial_run(client, experiment_id, parent_run_id)
    assert ended.info.status == "FINISHED" and CLOSED_BY_TAG not in ended.data.tags


def test_the_driver_leaves_alone_a_run_its_trial_has_ended(search):
    client, uri, experiment_id, parent_run_id, observer = search
    observer.on_end("KILLED", None, "stopped early by the scheduler")
    assert close_orphaned_runs(uri, experiment_id, parent_run_id, reason="search_end") == 0
    run = _the_trial_run(client, experiment_id, parent_run_id)
    assert run.info.status == "KILLED" and CLOSED_BY_TAG not in run.data.tags
