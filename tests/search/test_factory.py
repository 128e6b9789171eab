"""build_searcher / build_scheduler: names and options from the search spec."""

from __future__ import annotations

import pytest

from mritune.search.factory import (RUNG_SETTINGS, SEARCHERS, SEARCHER_OPTIONS, build_scheduler, build_searcher,
                                    searcher_options)


@pytest.mark.parametrize("name, cls", [("gpyopt", "GPyOptSearch"), ("bayesopt", "BayesOptSearch"),
                                       ("random", "RandomSearch"), ("tpe", "TPESearch")])
def test_build_searcher_by_name(name, cls):
    searcher = build_searcher(name, metric="val_macro_f1", mode="max", seed=3)
    assert type(searcher).__name__ == cls
    assert searcher.metric == "val_macro_f1" and searcher.mode == "max"


def test_options_reach_the_searcher_and_max_concurrent_wraps():
    from ray.tune.search import ConcurrencyLimiter

    limited = build_searcher("gpyopt", metric="swd", mode="min", max_concurrent=4, acquisition="LCB",
                             pending_strategy="local_penalization", n_initial_points=3)
    assert isinstance(limited, ConcurrencyLimiter) and limited.max_concurrent == 4
    inner = limited.searcher
    assert inner._settings.acquisition == "LCB" and inner._settings.pending_strategy == "local_penalization"
    assert inner._n_initial == 3


def test_unknown_searcher_and_options_are_named():
    with pytest.raises(ValueError, match="unknown searcher 'hyperopt'; expected one of gpyopt, bayesopt, random, tpe"):
        build_searcher("hyperopt", metric="m", mode="min")
    with pytest.raises(ValueError, match=r"kappa: unknown option for searcher 'gpyopt'; accepted: .*"
                                         r"pending_strategy"):
        build_searcher("gpyopt", metric="m", mode="min", xi=0.1, kappa=2)
    with pytest.raises(ValueError, match="pending_strategy: must be one of"):
        build_searcher("bayesopt", metric="m", mode="min", pending_strategy="local_penalization")
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        build_searcher("random", metric="m", mode="maximize")
    assert "acquisition" in searcher_options("bayesopt")


def test_build_asha_and_fifo():
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    asha = build_scheduler("asha", max_t=9, grace_period=1, reduction_factor=3, metric="val_loss", mode="min")
    assert isinstance(asha, ASHAScheduler)
    assert asha._max_t == 9 and asha._reduction_factor == 3
    assert [b._rungs for b in asha._brackets][0]  # rungs were built from max_t/grace/reduction
    assert isinstance(build_scheduler("fifo", max_t=5), FIFOScheduler)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "hyperband", "max_t": 5}, "unknown scheduler 'hyperband'; expected one of asha, fifo"),
    ({"name": "asha", "max_t": 0}, "max_t: must be a positive integer"),
    ({"name": "asha", "max_t": 5, "grace_period": 6}, r"grace_period: must be an integer in \[1, max_t=5\]"),
    ({"name": "asha", "max_t": 5, "reduction_factor": 1}, "reduction_factor: must be > 1"),
])
def test_bad_scheduler_settings_are_named(kwargs, message):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=message):
        build_scheduler(name, **kwargs)


def test_tpe_is_seeded_optuna_tpe_through_rays_adapter():
    """The peer baseline: Ray's OptunaSearch with a seeded TPESampler; the same seed suggests the same points."""
    import optuna
    from ray import tune

    def first_suggestions(seed: int) -> list:
        searcher = build_searcher("tpe", metric="loss", mode="min", seed=seed, n_initial_points=2)
        searcher.set_search_properties(None, None, {"lr": tune.loguniform(1e-4, 1e-1), "units": tune.choice([8, 16])})
        assert isinstance(searcher._sampler, optuna.samplers.TPESampler)
        return [searcher.suggest(f"t{i}") for i in range(3)]

    assert first_suggestions(1) == first_suggestions(1) != first_suggestions(2)
    with pytest.raises(ValueError, match="n_initial_points: must be an integer >= 1"):
        build_searcher("tpe", metric="loss", mode="min", n_initial_points=0)


# Options the factory sets from its own keywords; model_settings is a Python object, not a spec value.
_NOT_SPEC_OPTIONS = {"self", "space", "metric", "mode", "points_to_evaluate", "random_state_seed", "model_settings"}


@pytest.mark.parametrize("name", SEARCHERS)
def test_declared_options_are_the_constructor_keywords(name):
    """The spec is checked against SEARCHER_OPTIONS without importing the searcher: it must match the class."""
    import importlib
    import inspect

    from mritune.search.factory import _SEARCHER_CLASSES

    module, cls = _SEARCHER_CLASSES[name]
    parameters = set(inspect.signature(getattr(importlib.import_module(module), cls).__init__).parameters)
    # A multi-fidelity searcher's ASHA settings come from the scheduler section, never from search.options.
    assert set(SEARCHER_OPTIONS[name]) == parameters - _NOT_SPEC_OPTIONS - set(RUNG_SETTINGS)


@pytest.mark.parametrize("name, options", [("gpyopt", {"acquisition": "PI"}), ("bayesopt", {"n_initial_points": 0}),
                                           ("gpyopt", {"target_transform": "sqrt"}), ("tpe", {"blas_threads": 1})])
def test_a_value_the_declaration_refuses_the_constructor_refuses_too(name, options):
    with pytest.raises(ValueError, match=next(iter(options))):
        build_searcher(name, metric="m", mode="min", **options)
