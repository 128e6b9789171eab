"""One checker every fault scenario ends with: nothing lost, nothing left RUNNING, nothing wrongly promoted."""

from __future__ import annotations

import math
from pathlib import Path

# Metrics logged at one step that is not an epoch count: the registered checkpoint's test metrics, system metrics.
_NOT_EPOCH_METRICS = ("test_", "system/")


def tune_trial_ids(experiment_path: str | Path) -> set[str]:
    """The trial ids Ray Tune's experiment state in ``experiment_path`` knows."""
    from ray.tune import ExperimentAnalysis

    return {trial.trial_id for trial in ExperimentAnalysis(str(experiment_path)).trials}


def assert_nothing_lost(tracking_uri: str, parent_run_id: str, *, trial_ids: set[str], parent_status: str,
                        model_name: str | None = None, search_metric: str | None = None,
                        search_mode: str = "max", gate_metric: str | None = None, gate_mode: str = "max",
                        gate_rule: str = "interval") -> dict:
    """Assert the search's MLflow record is whole; returns counts for a reliability summary.

    - trials (``trial_ids``, from Tune) and the search's child runs are one to one (runs of trials the killed
      driver never saved are tagged ``mritune.orphaned`` and not counted);
    - no run of the search is RUNNING, and the parent run's status is ``parent_status``;
    - every child run's epoch metrics have steps 1..n, each once;
    - with ``model_name``: the version this search registered is its best trial by ``search_metric`` (with
      re-runs: the re-run configuration with the best mean ``search_metric``, among the top k trials), and the
      ``champion`` alias is where the gate (``gate_rule``), replayed over the versions in order, leaves it.
    """
    from mlflow.tracking import MlflowClient

    from mritune.platform.tracking.tags import ORPHAN_TAG, TRIAL_ID_TAG

    client = MlflowClient(tracking_uri)
    parent = client.get_run(parent_run_id)
    assert parent.info.status == parent_status, (parent.info.status, parent.data.tags.get("mritune.end_reason"))
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=10_000)
    running = [run.info.run_id for run in children if run.info.status == "RUNNING"]
    assert not running, f"runs left RUNNING: {running}"
    counted = [run for run in children if ORPHAN_TAG not in run.data.tags]
    run_trials = [run.data.tags.get(TRIAL_ID_TAG) for run in counted]
    assert sorted(run_trials) == sorted(set(run_trials)), f"a trial has two runs: {sorted(run_trials)}"
    assert set(run_trials) == set(trial_ids), (
        f"trials without a run: {sorted(set(trial_ids) - set(run_trials))}; "
        f"runs without a trial: {sorted(set(run_trials) - set(trial_ids))}")
    epochs = {run.data.tags[TRIAL_ID_TAG]: _assert_contiguous_epochs(client, run) for run in counted}
    if model_name is not None:
        _assert_registration(client, model_name, parent_run_id, counted, search_metric, search_mode, gate_metric,
                             gate_mode, gate_rule)
    return {"trials": len(trial_ids), "runs": len(counted), "orphaned_runs": len(children) - len(counted),
            "epochs_logged": sum(epochs.values()), "runs_lost": len(set(trial_ids) - set(run_trials))}


def _assert_contiguous_epochs(client, run) -> int:
    """Every epoch metric of the run has steps 1..n once each; returns n (0 for a run with no epoch)."""
    longest = 0
    for key in run.data.metrics:
        if key.startswith(_NOT_EPOCH_METRICS):
            continue
        steps = sorted(metric.step for metric in client.get_metric_history(run.info.run_id, key))
        assert steps == list(range(1, len(steps) + 1)), f"run {run.info.run_name} metric {key}: steps {steps}"
        longest = max(longest, len(steps))
    return longest


def _assert_registration(client, model_name, parent_run_id, runs, search_metric, search_mode, gate_metric,
                         gate_mode, gate_rule: str = "interval") -> None:
    from mritune.platform.registry.promotion import CHAMPION, PENDING
    from mritune.platform.tracking.tags import PROMOTION_TAG

    versions = client.search_model_versions(f"name='{model_name}'")
    ours = [v for v in versions if v.tags.get("search_run_id") == parent_run_id]
    assert len(ours) <= 1, f"search {parent_run_id} registered {len(ours)} versions"
    if ours and search_metric:
        ranked = _ranked_from_runs(client, runs, search_metric, search_mode)
        expected = ranked[0].trial_id
        if "rerun.top_k" in ours[0].tags:
            expected = _rerun_choice(client, parent_run_id, ranked, int(ours[0].tags["rerun.top_k"]), search_mode)
        assert ours[0].tags["trial_id"] == expected, (ours[0].tags["trial_id"], expected, ranked)
    assert not [v.version for v in versions if v.tags.get(PROMOTION_TAG) == PENDING], "a gate never finished"
    if gate_metric is None:
        return
    champion = client.get_model_version_by_alias(model_name, CHAMPION)
    expected_champion = replay_gate(versions, gate_metric=gate_metric, gate_mode=gate_mode, rule=gate_rule)
    assert str(champion.version) == expected_champion, (champion.version, expected_champion)


def _rerun_choice(client, parent_run_id: str, ranked: list, top_k: int, mode: str) -> str:
    """The trial the re-runs should have registered: the top k trials (by the one ranking) re-run, the one with
    the best mean validation score over its seeds (ties: the better-ranked), configurations with a failure out."""
    from mritune.platform.registry.rerun_tracking import read_reruns

    summary = read_reruns(client, parent_run_id)
    assert summary is not None, "a version with rerun tags but no re-run summary on its search run"
    assert [c.trial_id for c in summary.configs] == [s.trial_id for s in ranked[:top_k]], "re-ran the top k"
    means = {c.trial_id: sum(r.val for r in c.results) / len(c.results) for c in summary.configs
             if all(r.error is None for r in c.results)}
    sign = 1.0 if mode == "max" else -1.0
    order = [c.trial_id for c in summary.configs]
    return max(means, key=lambda trial: (sign * means[trial], -order.index(trial)))


def replay_gate(versions, *, gate_metric: str, gate_mode: str, rule: str = "interval") -> str | None:
    """Where the champion alias ends if the gate ran over ``versions`` one at a time in version order: a
    version on the champion's data takes it when its interval's worse end (interval rule; else its single
    number) beats the champion's mean (else its single number). Written apart from platform/registry/promotion.py."""
    from mritune.platform.tracking.tags import PROMOTION_TAG

    holder = None
    for version in sorted(versions, key=lambda v: int(v.version)):
        tags = version.tags
        if tags.get(PROMOTION_TAG, "").startswith("failed"):
            continue
        if holder is None:
            holder = version
            continue
        if tags.get("dataset_fingerprint") != holder.tags.get("dataset_fingerprint"):
            continue
        ours = float(tags.get(f"metric.{gate_metric}", "nan"))
        theirs = float(holder.tags.get(f"metric.{gate_metric}", "nan"))
        if rule == "interval":
            bound = "rerun.ci95_low" if gate_mode == "max" else "rerun.ci95_high"
            ours = float(tags.get(bound, ours))
            theirs = float(holder.tags.get("rerun.mean", theirs))
        if math.isnan(theirs) or (ours > theirs if gate_mode == "max" else ours < theirs):
            holder = version
    return None if holder is None else str(holder.version)


def _ranked_from_runs(client, runs, metric: str, mode: str) -> list:
    """The trials ranked by the platform's one rule (``platform/ranking``: ties included), from their MLflow runs."""
    from mritune.platform.tracking.ranking import TrialScore, best_of, sort_scores

    scores = []
    for run in runs:
        if run.info.status == "FAILED" or metric not in run.data.metrics:
            continue
        history = client.get_metric_history(run.info.run_id, metric)
        best = best_of(((m.value, m.step, None) for m in history), mode=mode)
        scores.append(TrialScore(trial_id=run.data.tags["mritune.trial_id"], status="OK",
                                 epochs=max(m.step for m in history), value=best[0] if best else None,
                                 epoch=best[1] if best else None))
    return sort_scores(scores, mode=mode)


def record_scenario(number: int, figures: dict) -> None:
    """Add one scenario's measured figures to the JSON named by ``MRITUNE_RELIABILITY_JSON`` (unset: nothing).

    The README's Reliability table is filled from this file (``benchmarks/results/reliability_scenarios.json``);
    default test runs leave it alone.
    """
    import json
    import os

    target = os.environ.get("MRITUNE_RELIABILITY_JSON")
    if not target:
        return
    path = Path(target)
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    recorded[str(number)] = figures
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
