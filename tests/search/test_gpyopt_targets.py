"""The target warp GPyOptSearch fits its GP on (search/gpyopt_model.gp_targets) and its option."""

from __future__ import annotations

import numpy as np
import pytest

from mritune.search.gpyopt_model import gp_targets
from mritune.search.gpyopt_searcher import GPyOptSearch
from tests.search.searchers import make, quadratic, quadratic_space, run_sequential


@pytest.mark.parametrize("transform", ["log", "standardize"])
def test_targets_keep_the_order_and_are_standardized(transform):
    y = np.array([3.0, 1.0, 250.0, 2.0, 1.5, 40.0])
    targets = gp_targets(y, transform)
    assert np.array_equal(np.argsort(targets, kind="stable"), np.argsort(y, kind="stable"))
    assert targets.mean() == pytest.approx(0.0, abs=1e-12)
    assert targets.std() == pytest.approx(1.0)


def test_log_warp_spreads_the_good_values_that_an_outlier_squeezes():
    y = np.array([1.0, 1.2, 1.5, 2.0, 1000.0])
    good_spread = {t: np.ptp(gp_targets(y, t)[:4]) for t in ("log", "standardize")}
    # Plain standardization leaves the four good values within ~0.01 of each other; the warp separates them.
    assert good_spread["log"] > 20 * good_spread["standardize"], good_spread


@pytest.mark.parametrize("y", [np.ones(4), np.array([2.0])])
def test_flat_targets_give_zeros_not_nan(y):
    assert np.array_equal(gp_targets(y, "log"), np.zeros_like(y))


def test_unknown_target_transform_is_named():
    with pytest.raises(ValueError, match="target_transform must be one of log, standardize, got 'rank'"):
        GPyOptSearch(space=quadratic_space(), metric="loss", mode="min", target_transform="rank")


def test_standardize_option_still_beats_random_search():
    best = {name: min(quadratic(c) for c in run_sequential(searcher, 16))
            for name, searcher in [("standardize", make("gpyopt_kb", target_transform="standardize")),
                                   ("random", make("random"))]}
    assert best["standardize"] < 0.5 * best["random"], best
