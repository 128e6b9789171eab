"""The searcher contract, run against every mritune searcher (GPyOpt × pending strategies, BayesOpt, random, MOBSTER × 2 models)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tests.search.searchers import MODEL_BASED, SEARCHERS, make, quadratic, run_sequential

ALL = list(SEARCHERS)
# Without running trials the three GPyOpt pending strategies run the same code, so sequential checks take one.
SEQUENTIAL = ["gpyopt_kb", "bayesopt", "random", "mobster_joint", "mobster_per_rung"]
SEQUENTIAL_MODELS = ["gpyopt_kb", "bayesopt", "mobster_joint", "mobster_per_rung"]


@pytest.mark.parametrize("name", SEQUENTIAL_MODELS)
def test_finds_quadratic_minimum_better_than_random(name):
    steps = 16
    best = {}
    for searcher_name in (name, "random"):
        # Median over 3 seeds: one seed's 4 random points can leave any model a bad first fit.
        best[searcher_name] = np.median([min(quadratic(c) for c in run_sequential(make(searcher_name,
                                                                                         random_state_seed=seed),
                                                                                    steps))
                                         for seed in range(3)])
    # Same seed → same 4 initial points; what follows must at least halve random search's best.
    assert best[name] < 0.5 * best["random"], best


@pytest.mark.parametrize("name", SEQUENTIAL_MODELS)
def test_mode_max_is_maximized(name):
    searcher = make(name, metric="score", mode="max")
    configs = run_sequential(searcher, 12, metric="score", sign=-1.0)
    assert min(quadratic(c) for c in configs[-6:]) < min(quadratic(c) for c in configs[:4])
    assert all(o["value"] <= 0 for o in searcher.observations)  # user's sign kept in the view


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_nan_inf_error_and_missing_results_never_reach_the_model(name):
    searcher = make(name)
    run_sequential(searcher, 5)
    bad_results = {"nan": ({"loss": float("nan")}, False), "inf": ({"loss": float("inf")}, False),
                   "ninf": ({"loss": -float("inf")}, False), "missing": ({"other": 1.0}, False),
                   "none": (None, False), "error": (None, True), "text": ({"loss": "oops"}, False)}
    for trial_id, (result, error) in bad_results.items():
        searcher.suggest(trial_id)
        searcher.on_trial_complete(trial_id, result, error=error)
    X, y = searcher._log.minimization_data(searcher._space.encode, "min")
    assert len(y) == 5 and np.all(np.isfinite(y))
    statuses = {o["trial_id"]: o["status"] for o in searcher.observations}
    assert statuses["nan"] == statuses["inf"] == statuses["ninf"] == "nonfinite"
    assert statuses["missing"] == statuses["none"] == statuses["text"] == "missing"
    assert statuses["error"] == "error"
    # The search goes on, model-based once there is data.
    more = run_sequential(searcher, 3, start=100)
    assert all(-2 <= c["a"] <= 2 and 1e-4 <= c["lr"] <= 1e-1 for c in more)


@pytest.mark.parametrize("name", MODEL_BASED)
def test_running_trials_get_distinct_suggestions(name):
    searcher = make(name)
    run_sequential(searcher, 6)
    running = [searcher._space.encode(searcher.suggest(f"run{i}")) for i in range(4)]
    gaps = [np.abs(a - b).max() for a, b in itertools.combinations(running, 2)]
    assert min(gaps) > 0.02, f"nearly identical suggestions for running trials: {gaps}"


@pytest.mark.parametrize("name", ALL)
def test_save_restore_into_fresh_instance_continues(name, tmp_path):
    original = make(name, random_state_seed=7)
    run_sequential(original, 6)
    running_config = original.suggest("running")
    path = tmp_path / "state.json"
    original.save(str(path))

    fresh = SEARCHERS[name](space=make(name)._space, random_state_seed=123)  # metric/mode/seed from the state
    fresh.restore(str(path))
    assert fresh.observations == original.observations
    assert fresh.suggest("next") == original.suggest("next")
    fresh.on_trial_complete("running", {"loss": quadratic(running_config)})
    assert len(fresh.observations) == 7 and fresh.observations[-1]["config"] == running_config


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_same_seed_same_sequence(name):
    first = run_sequential(make(name, random_state_seed=11), 7)
    second = run_sequential(make(name, random_state_seed=11), 7)
    other = run_sequential(make(name, random_state_seed=12), 7)
    assert first == second
    assert first != other


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_points_to_evaluate_come_first_and_constants_pass_through(name):
    points = [{"a": 0.5, "b": -0.3, "lr": 0.01, "fixed": {"epochs": 3}}]
    searcher = make(name, points_to_evaluate=points)
    config = searcher.suggest("first")
    assert config["a"] == 0.5 and config["b"] == -0.3 and math.isclose(config["lr"], 0.01)
    assert config["fixed"] == {"epochs": 3}


@pytest.mark.parametrize("name", ALL)
def test_unsupported_domain_raises_naming_key(name):
    from ray import tune

    with pytest.raises(ValueError, match=r"model/noise.*Normal"):
        SEARCHERS[name](space={"model": {"noise": tune.randn(0, 1)}}, metric="loss", mode="min")


@pytest.mark.parametrize("name", ALL)
def test_missing_metric_or_space_is_a_clear_error(name):
    with pytest.raises(ValueError, match="metric and mode"):
        SEARCHERS[name](space=make(name)._space).suggest("t")
    with pytest.raises(ValueError, match="no search space"):
        SEARCHERS[name](metric="loss", mode="min").suggest("t")


def test_restore_rejects_other_searchers_state(tmp_path):
    path = tmp_path / "state.json"
    make("random").save(str(path))
    with pytest.raises(ValueError, match="written by 'RandomSearch'"):
        make("gpyopt_kb").restore(str(path))
    with pytest.raises(FileNotFoundError):
        make("gpyopt_kb").restore(str(tmp_path / "absent.json"))


def test_result_of_an_unknown_trial_is_ignored_with_a_warning(caplog):
    searcher = make("random")
    run_sequential(searcher, 2)
    with caplog.at_level("WARNING", logger="mritune.search.searcher_base"):
        searcher.on_trial_complete("never-suggested", {"loss": 0.0})
    assert len(searcher.observations) == 2
    assert "unknown trial never-suggested" in caplog.text
