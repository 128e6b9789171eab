"""A search whose trials share one reused Ray actor: every trial starts from its own config, with its own epoch
counter and run. (That a trial after an ASHA stop in a reused actor keeps one complete run is checked on the main
end-to-end search, tests/platform/test_search_e2e.py.)"""

from __future__ import annotations

import math

import pytest

from mritune.platform.run.runner import run_search
from mritune.platform.tracking.tags import WORKER_PID_TAG
from tests.platform.search_helpers import child_runs, tiny_spec


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MRITUNE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mritune-cache"))
    monkeypatch.delenv("MRITUNE_TRIAL_SPEEDUPS", raising=False)
    monkeypatch.chdir(tmp_path_factory.getbasetemp())


def _runs_by_trial(outcome):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(outcome.tracking_uri)
    children = child_runs(client, outcome.experiment_id, outcome.parent_run_id)
    runs = {run.data.tags["mritune.trial_id"]: run for run in children}
    assert len(runs) == len(children) == len(outcome.table), "every trial has exactly one child run"
    return client, runs


def _steps(client, run, key="train_loss"):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]


def test_trials_in_one_reused_actor_each_start_from_their_own_config(local_ray, tmp_path, capsys):
    # Three trials with the same config, one at a time: in one reused actor, a trial that inherited the previous
    # trial's model or optimizer would start from trained weights and report a different first-epoch loss.
    spec = tiny_spec(tmp_path, overrides=(
        "search.algorithm=random", "search.num_samples=3", "search.max_concurrent=1", "scheduler.name=fifo",
        "registry.enabled=false",
    ))
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={
        "options": {}, "space": {"dense_units": {"choice": [16]}}})})
    outcome = run_search(spec)
    client, runs = _runs_by_trial(outcome)

    assert len({run.data.tags[WORKER_PID_TAG] for run in runs.values()}) == 1, "the trials shared one actor"
    first_losses = []
    for run in runs.values():
        history = _steps(client, run)
        assert [step for step, _ in history] == [1, 2], "the epoch counter restarts at 1 in every trial"
        assert [v for _, v in _steps(client, run, "epoch")] == [1.0, 2.0]
        assert run.info.status == "FINISHED"
        first_losses.append(history[0][1])
    assert all(math.isclose(loss, first_losses[0], rel_tol=1e-3) for loss in first_losses), first_losses

    # registry.enabled: false — the console says the registry was off, not that no trial scored.
    from mritune.platform.views.outcome import print_outcome

    capsys.readouterr()
    print_outcome(outcome)
    printed = capsys.readouterr().out
    assert "Registry:        off (registry.enabled: false)" in printed and "no trial" not in printed, printed
