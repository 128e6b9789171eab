"""The report's data: what each plot draws, computed by the pure functions of search_report.data and importance."""

from __future__ import annotations

import pytest

from mritune.platform.views.search_report import data as d
from mritune.platform.views.search_report.importance import param_importance


def _trial(number: int, start: float, end: float, values: list[float | None], *, outcome: str = d.COMPLETED,
           config: dict | None = None) -> d.TrialRecord:
    step = (end - start) / max(1, len(values))
    curve = tuple(d.EpochPoint(epoch=i + 1, value=v, time_s=start + step * (i + 1)) for i, v in enumerate(values))
    return d.TrialRecord(trial_id=f"t{number}", run_id=f"r{number}", run_name=f"#{number}", outcome=outcome,
                         start_s=start, end_s=end, config=config or {}, curve=curve, number=number)


def _record(trials, *, mode: str = "max", space=()) -> d.SearchRecord:
    return d.SearchRecord(
        name="s", task="classifier", status="FINISHED", metric="m", mode=mode, algorithm="random", scheduler="asha",
        max_t=8, grace_period=2, reduction_factor=2.0, num_samples=len(trials), experiment_id="1",
        parent_run_id="p", ui_url="http://127.0.0.1:5000", duration_s=max(t.end_s for t in trials),
        space=tuple(space), trials=tuple(trials),
    )


@pytest.mark.parametrize(("max_t", "grace", "factor"),
                         [(8, 2, 2), (3, 1, 2), (10, 2, 2), (27, 1, 3), (100, 1, 4), (10, 1, 2.5), (20, 2, 1.5)])
def test_asha_rungs_are_the_ones_ray_compares_at(max_t, grace, factor):
    """Ray records a trial at a milestone with its first iteration >= the milestone: ceil, not round (with
    reduction_factor 2.5 Ray stops at 1, 3, 7; rounding drew 1, 2, 6)."""
    import math

    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(time_attr="training_iteration", metric="m", mode="max", max_t=max_t,
                              grace_period=grace, reduction_factor=factor)
    ray_rungs = sorted(math.ceil(rung - 1e-9) for rung, _ in scheduler._brackets[0]._rungs if rung < max_t)
    assert d.asha_rungs(max_t=max_t, grace_period=grace, reduction_factor=factor) == ray_rungs


def test_timeline_packs_trials_on_the_fewest_slots_without_overlap():
    trials = [_trial(1, 0, 10, [0.1]), _trial(2, 1, 4, [0.2]), _trial(3, 5, 12, [0.3]), _trial(4, 10.5, 15, [0.4])]
    bars = d.timeline(trials)
    assert sorted(bar.trial_id for bar in bars) == ["t1", "t2", "t3", "t4"], "one bar per trial"
    assert len({bar.slot for bar in bars}) == 2, "never more than two trials ran at once"
    for slot in {bar.slot for bar in bars}:
        lane = sorted((b for b in bars if b.slot == slot), key=lambda b: b.start_s)
        assert all(a.end_s <= b.start_s for a, b in zip(lane, lane[1:])), "bars on one slot never overlap"
    gaps = d.idle_gaps(bars, span_s=15, min_gap_s=0.0)
    assert (1, 4, 5) in [(s, a, b) for s, a, b in gaps] or (0, 4, 5) in [(s, a, b) for s, a, b in gaps]
    assert d.slot_utilisation(bars, span_s=15) == pytest.approx((10 + 3 + 7 + 4.5) / 30)


def test_best_so_far_by_time_and_by_trial_follow_the_mode():
    trials = [_trial(1, 0, 4, [0.5, 0.4]), _trial(2, 1, 3, [0.2]), _trial(3, 2, 8, [None, 0.1])]
    low = _record(trials, mode="min")
    assert d.best_by_time(low) == [(2, 0.5), (3, 0.2), (4, 0.2), (5, 0.2), (8, 0.1)], "every epoch, when logged"
    rows = d.best_by_trial(low)
    assert [(n, best) for n, _, best in rows] == [(1, 0.4), (2, 0.2), (3, 0.1)]
    high = _record(trials, mode="max")
    assert [best for _, _, best in d.best_by_trial(high)] == [0.5, 0.5, 0.5]


def test_best_by_trial_follows_the_order_the_trials_started_not_their_numbers():
    """The driver's numbers start again at 1 after a resume and are missing for trials that never reported (0):
    the convergence panel still shows the trials in the order they started, numbered 1..n in that order."""
    trials = [_trial(1, 20, 30, [0.9]),  # the resumed driver's first trial, started last
              _trial(2, 10, 15, [0.6]),
              _trial(0, 5, 6, [None], outcome=d.FAILED),  # failed before its first result: never numbered
              _trial(1, 0, 4, [0.5])]
    rows = d.best_by_trial(_record(trials))
    assert rows == [(1, 0.5, 0.5), (2, None, 0.5), (3, 0.6, 0.6), (4, 0.9, 0.9)]


def test_trials_rank_as_the_results_table_does():
    trials = [_trial(1, 0, 4, [0.5, 0.7]), _trial(2, 0, 4, [0.9], outcome=d.FAILED), _trial(3, 0, 4, [None]),
              _trial(4, 0, 4, [0.6], outcome=d.STOPPED)]
    ranked = _record(trials).ranked()
    assert [score.trial_id for score, _ in ranked] == ["t1", "t4", "t2", "t3"], "errored after clean, unscored last"
    assert (ranked[0][0].value, ranked[0][0].epoch) == (0.7, 2)


def test_parallel_coordinates_put_values_on_their_axes():
    space = [d.SpaceParam(name="lr", kind="float", lower=1e-4, upper=1e-2, log=True),
             d.SpaceParam(name="units", kind="ordinal", values=(8, 16, 32))]
    trials = [_trial(1, 0, 1, [0.5], config={"lr": 1e-3, "units": "16"}),
              _trial(2, 0, 1, [0.6], config={"lr": 1e-2, "units": "32"}),
              _trial(3, 0, 1, [None], config={"lr": 1e-4, "units": "8"})]
    lines = d.parallel_coordinates(_record(trials, space=space))
    assert [(trial_id, positions) for trial_id, positions, _ in lines] == [
        ("t2", [pytest.approx(1.0), 1.0]), ("t1", [pytest.approx(0.5), 0.5])], "log axis; unscored trial left out"


def test_importance_finds_the_hyperparameter_that_decides_the_score():
    import random

    rng = random.Random(0)
    space = [d.SpaceParam(name="decisive", kind="float", lower=0.0, upper=1.0),
             d.SpaceParam(name="noise", kind="float", lower=0.0, upper=1.0),
             d.SpaceParam(name="flag", kind="categorical", values=("a", "b"))]
    trials = []
    for number in range(1, 25):
        config = {"decisive": rng.random(), "noise": rng.random(), "flag": rng.choice("ab")}
        trials.append(_trial(number, 0, 1, [config["decisive"] ** 2 + 0.01 * rng.random()], config=config))
    importance = param_importance(_record(trials, space=space))
    assert importance.trials == 24
    assert max(importance.values, key=importance.values.get) == "decisive"
    assert importance.values["decisive"] > 0.8
    few = param_importance(_record(trials[:2], space=space))
    assert few.values == {} and "at least" in few.note and few.trials == 2


def test_the_winners_curse_columns_keep_scored_reruns_and_mark_the_registered_one():
    from mritune.platform.registry.rerun_summary import ConfigReruns, RerunResult, summarise

    def config(rank, vals, errors=(None, None)):
        results = tuple(RerunResult(trial_id=f"t{rank}", seed=seed, epoch=3, val=val, test=val and val - 0.05,
                                    error=error, resampled=(0.5, 0.6) if val else ())
                        for seed, val, error in zip((7, 8), vals, errors))
        return ConfigReruns(rank=rank, trial_id=f"t{rank}", trial_value=0.9, epoch=3, searched={}, results=results)

    summary = summarise(configs=[config(1, [0.7, None], (None, "diverged")), config(2, [0.6, 0.62])],
                        metric="m", mode="max", gate_metric="g", gate_mode="max", seeds=(7, 8), n_test_images=10,
                        image_resamples=2, seconds=1.0)
    first, second = d.rerun_columns(summary)
    assert (first.label, first.val, first.interval, first.registered) == ("#1 t1", (0.7,), None, False)
    assert second.registered and second.val == (0.6, 0.62) and second.interval[1] <= second.interval[2]


def test_asha_rungs_with_a_fractional_reduction_factor_are_ray_stops():
    assert d.asha_rungs(max_t=10, grace_period=1, reduction_factor=2.5) == [1, 3, 7]
