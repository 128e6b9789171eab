"""The re-runs' choice and record (platform/registry/rerun_summary.py, rerun_views.py): pure functions, asserted directly."""

from __future__ import annotations

import json

import pytest

from mritune.platform.registry.rerun_summary import (
    ConfigReruns, RerunResult, RerunSummary, choose, closest_to_mean, decision_record, summarise,
)
from mritune.platform.registry.rerun_views import console_lines, markdown, table_columns

SEEDS = (11, 22, 33)


def _config(rank: int, trial_value: float, vals, tests, *, errors=(None, None, None)) -> ConfigReruns:
    results = tuple(
        RerunResult(trial_id=f"t{rank}", seed=seed, epoch=4, val=val, test=test, error=error,
                    resampled=() if test is None else tuple(test + d for d in (-0.02, 0.0, 0.01, 0.02)),
                    metrics={"val_macro_f1": val or 0.0, "test_macro_f1": test or 0.0})
        for seed, val, test, error in zip(SEEDS, vals, tests, errors))
    return ConfigReruns(rank=rank, trial_id=f"t{rank}", trial_value=trial_value, epoch=4,
                        searched={"learning_rate": 0.001 * rank, "dense_units": 32}, results=results)


def _summary(configs, *, mode: str = "max") -> RerunSummary:
    return summarise(configs=configs, metric="val_macro_f1", mode=mode, gate_metric="test_macro_f1", gate_mode=mode,
                     seeds=SEEDS, n_test_images=144, image_resamples=4, seconds=12.0)


def test_the_best_mean_validation_score_is_chosen_never_the_test_score():
    lucky = _config(1, 0.80, [0.60, 0.62, 0.61], [0.90, 0.91, 0.92])  # the search's best, best on test too
    steady = _config(2, 0.75, [0.70, 0.71, 0.69], [0.65, 0.66, 0.64])
    summary = _summary([lucky, steady])
    assert summary.chosen == 1 and summary.chosen_config.trial_id == "t2"
    assert summary.changed_winner
    assert summary.registered.seed == 11, "0.70 is the re-run closest to the mean 0.70"
    assert summary.interval.mean == pytest.approx(0.65)


def test_ties_go_to_the_better_ranked_trial_and_a_min_metric_chooses_the_lowest():
    first, second = _config(1, 0.5, [0.6, 0.6, 0.6], [0.5] * 3), _config(2, 0.4, [0.6, 0.6, 0.6], [0.5] * 3)
    assert choose(_summary([first, second]).configs, mode="max") == 0
    low = _config(1, 10.0, [12.0, 13.0, 14.0], [12.0] * 3)
    lower = _config(2, 11.0, [11.0, 11.5, 12.0], [12.0] * 3)
    assert choose(_summary([low, lower], mode="min").configs, mode="min") == 1


def test_a_configuration_with_a_failed_rerun_is_not_chosen_and_all_failing_chooses_none():
    diverged = _config(1, 0.8, [0.9, None, 0.9], [0.9, None, 0.9], errors=(None, "TrainingDiverged: nan", None))
    fine = _config(2, 0.7, [0.5, 0.5, 0.5], [0.5] * 3)
    summary = _summary([diverged, fine])
    assert summary.chosen == 1 and summary.configs[0].interval is None and summary.configs[0].val_mean is None
    assert summary.winners_curse() is None, "the best trial's re-runs have no mean"
    assert _summary([diverged]).chosen is None and _summary([diverged]).registered is None


def test_closest_to_mean_and_its_ties():
    config = _config(1, 0.8, [0.60, 0.70, 0.80], [0.6] * 3)
    assert closest_to_mean(config).seed == 22
    tied = _config(1, 0.8, [0.60, 0.80, 0.70], [0.6] * 3)
    assert closest_to_mean(tied).seed == 33
    with pytest.raises(ValueError, match="one failed"):
        closest_to_mean(_config(1, 0.8, [0.6, None, 0.7], [0.6, None, 0.6], errors=(None, "x", None)))


def test_the_winners_curse_is_positive_when_the_search_flattered_for_either_direction():
    high = _summary([_config(1, 0.80, [0.70, 0.72, 0.74], [0.68, 0.70, 0.72])]).winners_curse()
    assert high.val_gap == pytest.approx(0.08) and high.test_gap == pytest.approx(0.10)
    low = _summary([_config(1, 10.0, [12.0, 12.0, 12.0], [13.0] * 3)], mode="min").winners_curse()
    assert low.val_gap == pytest.approx(2.0) and low.test_gap == pytest.approx(3.0)


def test_the_summary_round_trips_through_json_without_the_resamples():
    summary = _summary([_config(1, 0.8, [0.6, 0.62, 0.61], [0.6] * 3), _config(2, 0.7, [0.7] * 3, [0.65] * 3)])
    summary = summary.with_decision(decision_record(
        version="3", alias="challenger", reason="r", rule="interval", value=0.65, interval=summary.interval,
        champion_version="2", champion_tags={"metric.test_macro_f1": "0.7", "rerun.mean": "0.69",
                                             "rerun.ci95_low": "0.6", "rerun.ci95_high": "0.75"},
        gate_metric="test_macro_f1"))
    back = RerunSummary.from_dict(json.loads(json.dumps(summary.to_dict())))
    assert back.chosen_config.trial_id == "t2" and back.registered.seed == summary.registered.seed
    assert back.interval == summary.interval and back.configs[0].val_mean == pytest.approx(0.61)
    assert back.decision["champion"]["interval"] == {"mean": 0.69, "low": 0.6, "high": 0.75}
    assert all(result.resampled == () for config in back.configs for result in config.results)
    with pytest.raises(ValueError, match="format"):
        RerunSummary.from_dict({**summary.to_dict(), "format_version": 99})


def test_views_show_per_seed_scores_means_intervals_and_the_decision():
    summary = _summary([_config(1, 0.80, [0.60, 0.62, 0.61], [0.9] * 3), _config(2, 0.75, [0.7] * 3, [0.65] * 3)])
    summary = summary.with_decision(decision_record(
        version="4", alias="champion", reason="its lower bound beats v3's mean", rule="interval", value=0.65,
        interval=summary.interval, champion_version="3", champion_tags={"metric.test_macro_f1": "0.6"},
        gate_metric="test_macro_f1"))
    columns = table_columns(summary)
    assert columns["trial"] == ["t1", "t2"] and columns["seeds"] == ["11, 22, 33"] * 2
    assert columns["test_macro_f1 per seed"][0] == "0.9000, 0.9000, 0.9000"
    assert columns["registered"] == ["", "seed 11"]
    lines = "\n".join(console_lines(summary))
    assert "<- registered" in lines and "gap +0.1900" in lines and "another configuration" in lines
    assert "v3 test_macro_f1 0.6000 (no interval)" in lines and "@champion" in lines
    text = markdown(summary)
    assert "| 2 | `t2` **registered** |" in text and "Winner's curse" in text


def test_rerun_seeds_are_new_distinct_and_the_same_for_the_same_search():
    from mritune.platform.registry.rerun import rerun_seeds

    seeds = rerun_seeds(5, search_seed=0)
    assert len(set(seeds)) == 5 and seeds == rerun_seeds(5, search_seed=0)
    assert rerun_seeds(5, search_seed=1) != seeds
    assert seeds[0] not in rerun_seeds(5, search_seed=0, avoid={seeds[0]}), "a trial's own seed is never reused"
    assert rerun_seeds(3, search_seed=0, salt=99) != seeds[:3], "another purpose (fresh seeds) draws others"
