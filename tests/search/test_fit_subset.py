"""FitSubset: which observations a GP is fitted on once there are more than max_points."""

from __future__ import annotations

import numpy as np
import pytest

from mritune.search.fit_subset import FitSubset, spread


def _data(n: int, dim: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, dim))
    return X, ((X - 0.3) ** 2).sum(axis=1)


def test_all_observations_in_order_while_there_are_few_enough():
    X, y = _data(50)
    assert FitSubset(max_points=50).select(X, y).tolist() == list(range(50))
    assert FitSubset(max_points=None).select(X, y).tolist() == list(range(50))


def test_best_share_then_a_spread_that_reaches_every_visited_region():
    X, y = _data(1000)
    # A far corner the search visited a little, with bad values: a random subset of 100 would likely miss it.
    X[:5] = 0.97 + 0.01 * np.arange(5)[:, None]
    y[:5] = 10.0
    chosen = FitSubset(max_points=100, best_share=0.3).select(X, y)
    assert len(chosen) == 100 and len(set(chosen.tolist())) == 100 and chosen.tolist() == sorted(chosen.tolist())
    assert set(np.argsort(y)[:30].tolist()) <= set(chosen.tolist())  # the 30 best, all of them
    assert set(chosen.tolist()) & set(range(5))  # the far corner is represented
    # Spread: no point of the whole set is far from the subset.
    gaps = np.min(np.linalg.norm(X[:, None, :] - X[chosen][None, :, :], axis=-1), axis=1)
    random = np.sort(np.random.default_rng(1).choice(1000, 100, replace=False))
    random_gaps = np.min(np.linalg.norm(X[:, None, :] - X[random][None, :, :], axis=-1), axis=1)
    assert gaps.max() < random_gaps.max()


def test_selection_is_deterministic_and_the_other_selections_behave_as_named():
    X, y = _data(400)
    assert FitSubset(max_points=60).select(X, y).tolist() == FitSubset(max_points=60).select(X, y).tolist()
    near = FitSubset(max_points=60, selection="trust_region").select(X, y)
    distance = np.linalg.norm(X - X[np.argmin(y)], axis=1)
    assert distance[near].max() <= np.sort(distance)[59] + 1e-12
    random = FitSubset(max_points=60, selection="random").select(X, y)
    assert len(random) == 60 and random.tolist() == FitSubset(max_points=60, selection="random").select(X, y).tolist()


def test_spread_picks_the_farthest_candidates_first():
    X = np.array([[0.0], [0.1], [0.5], [1.0], [0.9]])
    assert spread(X, 2, chosen=np.array([0])).tolist() == [3, 2]
    assert spread(X, 9, chosen=np.array([0])).tolist() == [1, 2, 3, 4]  # fewer candidates than asked: all
    assert spread(X, 0).tolist() == []


@pytest.mark.parametrize("kwargs, message", [({"max_points": 1}, "max_points must be an integer >= 2"),
                                             ({"best_share": 0.0}, r"best_share must be in \(0, 1\]"),
                                             ({"selection": "newest"}, "selection must be one of")])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FitSubset(**kwargs)
