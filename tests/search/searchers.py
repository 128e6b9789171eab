"""Searcher constructors shared by the search tests (one entry per searcher the contract suite covers)."""

from __future__ import annotations

from mritune.search.bayesopt_searcher import BayesOptSearch
from mritune.search.gpyopt_searcher import GPyOptSearch
from mritune.search.mobster_searcher import MobsterSearch
from mritune.search.random_searcher import RandomSearch

SEARCHERS = {
    "gpyopt_kb": lambda **kw: GPyOptSearch(pending_strategy="kriging_believer", **kw),
    "gpyopt_cl": lambda **kw: GPyOptSearch(pending_strategy="constant_liar", **kw),
    "gpyopt_lp": lambda **kw: GPyOptSearch(pending_strategy="local_penalization", **kw),
    "bayesopt": lambda **kw: BayesOptSearch(**kw),
    "random": lambda **kw: RandomSearch(**kw),
    # Contract results carry training_iteration 1: the first of ASHA's levels (1, 3, 9) here.
    "mobster_joint": lambda **kw: MobsterSearch(max_t=9, grace_period=1, reduction_factor=3, model="joint", **kw),
    "mobster_per_rung": lambda **kw: MobsterSearch(max_t=9, grace_period=1, reduction_factor=3, model="per_rung",
                                                   **kw),
}
MODEL_BASED = [name for name in SEARCHERS if name != "random"]


def quadratic_space() -> dict:
    from ray import tune

    return {"a": tune.uniform(-2.0, 2.0), "b": tune.uniform(-2.0, 2.0), "lr": tune.loguniform(1e-4, 1e-1),
            "fixed": {"epochs": 3}}


def quadratic(config: dict) -> float:
    """Minimum 0 at a=0.5, b=-0.3, lr=1e-2 (in log10 space)."""
    import math

    return (config["a"] - 0.5) ** 2 + (config["b"] + 0.3) ** 2 + 0.5 * (math.log10(config["lr"]) + 2) ** 2


def make(name: str, **overrides):
    options = {"space": quadratic_space(), "metric": "loss", "mode": "min", "random_state_seed": 0,
               "n_initial_points": 4}
    options.update(overrides)
    return SEARCHERS[name](**options)


def run_sequential(searcher, steps: int, *, start: int = 0, metric: str = "loss", sign: float = 1.0) -> list:
    configs = []
    for i in range(start, start + steps):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {metric: sign * quadratic(config), "training_iteration": 1})
    return configs
