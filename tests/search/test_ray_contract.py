"""Ray Tune's own searcher tests, in the shape of ``python/ray/tune/tests/test_searchers.py``, for mritune's
searchers: ``SaveRestoreCheckpointTest`` (save; restore into a fresh instance built with no arguments, without
``set_search_properties``; go on) and ``InvalidValuesTest`` (a real Tuner whose trials report inf, -inf and NaN).

A NaN/inf/None/missing result at the searcher itself is covered for every searcher by
tests/search/test_contract.py::test_nan_inf_error_and_missing_results_never_reach_the_model.
"""

from __future__ import annotations

import json
import math

import pytest

from mritune.search.bayesopt_searcher import BayesOptSearch
from mritune.search.gpyopt_searcher import GPyOptSearch
from mritune.search.mobster_searcher import MobsterSearch
from mritune.search.random_searcher import RandomSearch
from tests.search.searchers import quadratic, quadratic_space

# For the shared local_ray fixture (the InvalidValuesTest runs): no Tune result files needed.
LOCAL_RAY_OPTIONS = {"env": {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}}

# name -> (a configured searcher, as a user would build one; the class, for the fresh instance)
CONFIGURED = {
    "gpyopt": (lambda: GPyOptSearch(n_initial_points=2, acquisition="LCB", pending_strategy="constant_liar",
                                    random_state_seed=3, model_fit="inline"), GPyOptSearch),
    "bayesopt": (lambda: BayesOptSearch(n_initial_points=2, acquisition="EI", random_state_seed=3,
                                        model_fit="inline"), BayesOptSearch),
    "mobster": (lambda: MobsterSearch(max_t=9, grace_period=1, reduction_factor=3, n_initial_points=2,
                                      model="per_rung", refit_every=1, random_state_seed=3, model_fit="inline"),
                MobsterSearch),
    "random": (lambda: RandomSearch(random_state_seed=3), RandomSearch),
}
METRIC = "loss"


def _on_trial_callbacks(searcher, trial_id: str, config: dict) -> None:
    result = {"training_iteration": 1, METRIC: quadratic(config), "time_total_s": 1}
    searcher.on_trial_result(trial_id, result)
    searcher.on_trial_complete(trial_id, result)


def _save(searcher, path) -> dict:
    """Ray's ``_save``: search properties, three suggestions, one completed, saved."""
    assert searcher.set_search_properties(METRIC, "min", quadratic_space())
    configs = {trial_id: searcher.suggest(trial_id) for trial_id in ("1", "2", "not_completed")}
    _on_trial_callbacks(searcher, "1", configs["1"])
    searcher.save(str(path))
    return configs


def _go_on(searcher, configs: dict) -> dict:
    """Ray's ``_restore`` after the restore: trial 2 completes, a third is suggested and completes."""
    _on_trial_callbacks(searcher, "2", configs["2"])
    third = searcher.suggest("3")
    _on_trial_callbacks(searcher, "3", third)
    return third


@pytest.mark.parametrize("name", list(CONFIGURED))
def test_save_restore_into_an_instance_built_without_arguments(name, tmp_path):
    build, searcher_class = CONFIGURED[name]
    path = tmp_path / "searcher.json"
    original = build()
    configs = _save(original, path)

    fresh = searcher_class()  # no space, metric, mode or options: the state carries them
    fresh.restore(str(path))  # and no set_search_properties after it
    third = _go_on(fresh, configs)
    assert "not_completed" in fresh._log.pending, "the trial still running at the save is still tracked"
    assert third == _go_on(original, configs), "seeded: the restored searcher goes on as the original does"
    assert [o["trial_id"] for o in fresh.observations] == ["1", "2", "3"]
    assert fresh.metric == METRIC and fresh.mode == "min"
    state = json.loads(path.read_text())
    assert state["version"] == 2 and state["space"]["params"] and state["options"] == original._options
    assert path.stat().st_size < 20_000, "a small JSON dict, never a pickled model"


@pytest.mark.parametrize("name", list(CONFIGURED))
def test_the_saved_space_and_options_round_trip(name, tmp_path):
    build, searcher_class = CONFIGURED[name]
    original = build()
    _save(original, tmp_path / "state.json")
    fresh = searcher_class()
    fresh.restore(str(tmp_path / "state.json"))
    assert fresh._space == original._space and fresh._options == original._options
    assert fresh._space.decode(fresh._space.encode({"a": 0.1, "b": 0.2, "lr": 1e-3}))["fixed"] == {"epochs": 3}


def _invalid_objective(config: dict) -> None:
    from ray import tune

    if config["report"] > 4:
        tune.report({"_metric": float("inf")})
    elif config["report"] > 3:
        tune.report({"_metric": float("-inf")})
    elif config["report"] > 2:
        tune.report({"_metric": float("nan")})
    else:
        tune.report({"_metric": float(config["report"]) or 0.1})


INVALID_VALUE_SEARCHERS = {
    "gpyopt": lambda: GPyOptSearch(n_initial_points=3, random_state_seed=0, model_fit="inline"),
    "bayesopt": lambda: BayesOptSearch(n_initial_points=3, random_state_seed=0, model_fit="inline"),
    "mobster": lambda: MobsterSearch(max_t=1, n_initial_points=3, random_state_seed=0, model_fit="inline"),
}


@pytest.mark.parametrize("name", list(INVALID_VALUE_SEARCHERS))
def test_invalid_values_are_ignored_in_a_real_tuner(name, local_ray, tmp_path):
    """Ray's ``InvalidValuesTest``: trials that report inf, -inf or NaN neither crash the searcher nor win."""
    from ray import tune

    searcher = INVALID_VALUE_SEARCHERS[name]()
    tuner = tune.Tuner(
        tune.with_resources(_invalid_objective, {"cpu": 1}),
        param_space={"report": tune.uniform(1.0, 5.0)},
        # Reused actors: the searcher sees the same 8 results, from one or two worker processes instead of eight.
        tune_config=tune.TuneConfig(search_alg=searcher, metric="_metric", mode="max", num_samples=8,
                                    reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 8
    best = results.get_best_result()
    assert best.config["report"] <= 2.0
    statuses = [o["status"] for o in searcher.observations]
    assert len(statuses) == 8
    reported = [r.config["report"] for r in results]
    assert statuses.count("ok") == sum(value <= 2.0 for value in reported)
    assert all(math.isfinite(o["value"]) for o in searcher.observations if o["status"] == "ok")
