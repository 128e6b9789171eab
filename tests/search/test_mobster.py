"""MobsterSearch beyond the shared contract: ASHA's rung levels, what counts as a rung observation, the factory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mritune.search.factory import build_searcher, with_scheduler_settings
from mritune.search.mobster_searcher import MobsterSearch
from mritune.search.rungs import asha_levels
from tests.search.searchers import make, quadratic

ASHA_SETTINGS = [(9, 1, 3), (27, 1, 3), (100, 1, 4), (81, 3, 3), (10, 1, 2.5), (50, 2, 2), (5, 5, 3), (64, 1, 2)]


@pytest.mark.parametrize("max_t,grace_period,reduction_factor", ASHA_SETTINGS)
def test_levels_are_the_iterations_where_ray_asha_records_a_trial(max_t, grace_period, reduction_factor):
    from ray.tune.schedulers.async_hyperband import _Bracket

    bracket = _Bracket(grace_period, max_t, reduction_factor, s=0)
    # Ray records a trial at a milestone with its first result at iteration >= milestone.
    ray_iterations = {next(i for i in range(1, max_t + 1) if i >= milestone) for milestone, _ in bracket._rungs}
    assert asha_levels(max_t=max_t, grace_period=grace_period,
                       reduction_factor=reduction_factor) == tuple(sorted(ray_iterations | {max_t}))


def test_levels_known_values():
    assert asha_levels(max_t=9, grace_period=1, reduction_factor=3) == (1, 3, 9)
    assert asha_levels(max_t=100, grace_period=1, reduction_factor=4) == (1, 4, 16, 64, 100)
    assert asha_levels(max_t=10, grace_period=1, reduction_factor=2.5) == (1, 3, 7, 10)


@pytest.mark.parametrize("settings,message", [({"max_t": 0}, "max_t"), ({"max_t": 5, "grace_period": 6}, "<= max_t"),
                                              ({"max_t": 5, "reduction_factor": 1}, "reduction_factor"),
                                              ({"max_t": 2.5}, "max_t")])
def test_bad_asha_settings_are_a_clear_error(settings, message):
    with pytest.raises(ValueError, match=message):
        MobsterSearch(**settings)


def test_only_results_at_rung_levels_are_learned():
    searcher = make("mobster_joint", n_initial_points=10)  # levels 1, 3, 9
    config = searcher.suggest("t")
    for iteration in range(1, 10):
        searcher.on_trial_result("t", {"loss": float(iteration), "training_iteration": iteration})
    searcher.on_trial_result("t", {"loss": -5.0, "training_iteration": 3})  # a repeat of a level: first kept
    searcher.on_trial_complete("t", {"loss": 9.0, "training_iteration": 9})
    X, levels, y = searcher._rung_data()
    assert levels.tolist() == [1, 3, 9] and y.tolist() == [1.0, 3.0, 9.0]
    assert np.allclose(X, searcher._space.encode(config))


def test_non_finite_and_unlabelled_results_are_not_rung_observations():
    searcher = make("mobster_joint", n_initial_points=10)
    searcher.suggest("t")
    searcher.on_trial_result("t", {"loss": float("nan"), "training_iteration": 1})
    searcher.on_trial_result("t", {"loss": 2.0})  # no training_iteration: not placeable on a rung
    searcher.on_trial_result("t", {"other": 2.0, "training_iteration": 3})
    assert searcher._rung_data() is None
    searcher.on_trial_result("t", {"loss": 2.0, "training_iteration": 3})
    assert searcher._rung_data()[1].tolist() == [3]


def test_running_trials_are_pending_at_their_next_level():
    searcher = make("mobster_joint", n_initial_points=10)
    for trial_id, reached in (("fresh", []), ("at1", [1]), ("at3", [1, 2, 3]), ("done", [1, 3, 9])):
        searcher.suggest(trial_id)
        for iteration in reached:
            searcher.on_trial_result(trial_id, {"loss": 1.0, "training_iteration": iteration})
    X_pending, next_levels = searcher._pending_design()
    assert next_levels.tolist() == [1, 3, 9, 9]


@pytest.mark.parametrize("model", ["joint", "per_rung"])
def test_learns_from_low_rungs_before_any_trial_finishes(model):
    """ASHA-like use: many level-1 results, a few higher; suggestions concentrate where level-1 values are good."""
    searcher = make(f"mobster_{model}", n_initial_points=4)
    for i in range(18):
        config = searcher.suggest(f"t{i}")
        value = quadratic(config)
        searcher.on_trial_result(f"t{i}", {"loss": value + 1.0, "training_iteration": 1})
        if i % 3 == 0:
            searcher.on_trial_result(f"t{i}", {"loss": value + 0.3, "training_iteration": 3})
        searcher.on_trial_complete(f"t{i}", {"loss": value + 0.3, "training_iteration": 3 if i % 3 == 0 else 1})
    values = [quadratic(o["config"]) for o in searcher.observations]
    assert np.median(values[-6:]) < 0.5 * np.median(values[:4]), values


def test_suggest_cost_stays_bounded_and_state_is_small(tmp_path):
    searcher = make("mobster_joint", max_fit_points=40, refit_every=3)
    rng = np.random.default_rng(0)
    for i in range(80):
        config = searcher._space.decode(searcher._space.sample_unit(rng)[0])
        searcher._log.add_pending(f"r{i}", config)
        searcher.on_trial_complete(f"r{i}", {"loss": quadratic(config), "training_iteration": int(rng.choice([1, 3, 9]))})
    searcher._n_suggested = 100
    searcher.suggest("next")
    path = tmp_path / "state.json"
    searcher.save(str(path))
    assert path.stat().st_size < 40_000  # observations and a few floats, no model
    restored = MobsterSearch(max_t=9, grace_period=1, reduction_factor=3, space=searcher._space)
    restored.restore(str(path))
    assert restored._rung_data()[2].tolist() == searcher._rung_data()[2].tolist()
    assert restored.fits.peek() == searcher.fits.peek() is not None


def test_restore_with_other_asha_settings_is_refused(tmp_path):
    path = tmp_path / "state.json"
    make("mobster_joint").save(str(path))
    with pytest.raises(ValueError, match=r"rung levels \[1, 3, 9\].*\[1, 3, 9, 27\]"):
        MobsterSearch(max_t=27).restore(str(path))


def test_factory_passes_the_scheduler_settings_only_to_multi_fidelity_searchers():
    assert with_scheduler_settings("gpyopt", {"acquisition": "EI"}, max_t=9, grace_period=1,
                                   reduction_factor=3) == {"acquisition": "EI"}
    options = with_scheduler_settings("mobster", {"model": "per_rung"}, max_t=27, grace_period=3, reduction_factor=3)
    searcher = build_searcher("mobster", metric="loss", mode="min", **options)
    assert searcher.levels == (3, 9, 27)
    with pytest.raises(ValueError, match="search.options.max_t is taken from the scheduler section"):
        with_scheduler_settings("mobster", {"max_t": 5}, max_t=9, grace_period=1, reduction_factor=3)
    with pytest.raises(ValueError, match="model: must be one of joint, per_rung"):
        build_searcher("mobster", metric="loss", mode="min", **{**options, "model": "deep"})
    assert math.isclose(options["reduction_factor"], 3)
