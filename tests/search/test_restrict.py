"""``restrict_to``: a searcher over a table of recorded results suggests only the table's configurations, each once
before any comes again, and learns from the configuration that ran (Syne Tune's ``restrict_configurations``)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.search.searchers import SEARCHERS, make, quadratic, quadratic_space

ALLOWED = 9


def _allowed_configs() -> list[dict]:
    from mritune.search.space_ray import convert_ray_space

    space = convert_ray_space(quadratic_space())
    rng = np.random.default_rng(7)
    return [{k: v for k, v in space.decode(u).items() if k != "fixed"} for u in rng.random((ALLOWED, space.dim))]


def _searched(config: dict) -> tuple:
    return (round(config["a"], 9), round(config["b"], 9), round(config["lr"], 12))


def _tpe():
    from mritune.search.factory import build_searcher

    searcher = build_searcher("tpe", metric="loss", mode="min", seed=0, n_initial_points=3)
    searcher.set_search_properties("loss", "min", quadratic_space())
    return searcher


@pytest.mark.parametrize("name", [*SEARCHERS, "tpe"])
def test_suggestions_stay_in_the_table_and_do_not_repeat_until_all_ran(name):
    searcher = _tpe() if name == "tpe" else make(name)
    allowed = _allowed_configs()
    searcher.restrict_to(allowed)
    seen = []
    for i in range(ALLOWED + 2):
        config = searcher.suggest(f"t{i}")
        seen.append(_searched(config))
        result = {"loss": quadratic(config), "training_iteration": 1}
        searcher.on_trial_result(f"t{i}", result)
        searcher.on_trial_complete(f"t{i}", result)
    table = {_searched(c) for c in allowed}
    assert set(seen) <= table
    assert len(set(seen[:ALLOWED])) == ALLOWED  # every configuration once before any repeats


def test_restrict_to_before_the_space_is_known_is_refused():
    from mritune.search.gpyopt_searcher import GPyOptSearch

    with pytest.raises(ValueError, match="no search space"):
        GPyOptSearch(metric="loss", mode="min").restrict_to(_allowed_configs())
