"""Which observations a searcher's GP is fitted on once there are many: the best ones plus a spread of the rest.

An exact GP costs O(n³) to fit and O(n²) per predicted point, so at 1,000 observations one suggestion of
``GPyOptSearch`` took 1.5 s (median) and ``BayesOptSearch`` 3.3 s on the 2-core machine. Every model-based searcher
therefore fits at most ``max_points`` observations (``FitSubset``), chosen by ``select``:

- ``best_and_spread`` (the default): the ``best_share`` best values (expected improvement is decided near them),
  then greedy farthest-point picks among the rest (in the unit cube, starting from the points already chosen), so
  the model still sees every region the search has visited and knows where it is bad.
- ``best_and_random``: the same best share, then a seeded random subset of the rest (which keeps the search's
  own density: many points where it searched most).
- ``random``: a seeded random subset (what ``MobsterSearch`` did below its target level before issue 25).
- ``trust_region``: the ``max_points`` observations nearest the best one (a local model, as TuRBO fits).

``benchmarks/searcher_scale.py`` compares the three, and an exact GP on everything, by suggestion time at 1,000
observations and by regret when the cap bites. Below ``max_points`` every observation is fitted, in its order.
The searchers share one ``FitSubset`` type; the lead's studies may swap the selection without touching them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SELECTIONS = ("best_and_spread", "best_and_random", "random", "trust_region")


@dataclass(frozen=True)
class FitSubset:
    """At most ``max_points`` observations for a GP fit.

    Args:
        max_points: The most observations fitted (None: all of them, the exact GP).
        best_share: The share of ``max_points`` given to the best values (``best_and_spread``).
        selection: One of ``SELECTIONS`` (module docstring).

    Raises:
        ValueError: ``max_points`` below 2, ``best_share`` outside (0, 1], or an unknown ``selection``.

    Example:
        >>> subset = FitSubset(max_points=3)
        >>> subset.select(np.array([[0.0], [0.1], [0.5], [1.0]]), np.array([3.0, 0.0, 2.0, 1.0])).tolist()
        [1, 2, 3]
    """

    max_points: int | None = 200
    best_share: float = 0.3
    selection: str = "best_and_spread"

    def __post_init__(self) -> None:
        if self.max_points is not None and (isinstance(self.max_points, bool) or self.max_points < 2):
            raise ValueError(f"max_points must be an integer >= 2 or None, got {self.max_points!r}")
        if not 0 < self.best_share <= 1:
            raise ValueError(f"best_share must be in (0, 1], got {self.best_share!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")

    def select(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ascending row indices of (X, y) to fit; y is minimized. All rows when there are few enough."""
        n = len(y)
        if self.max_points is None or n <= self.max_points:
            return np.arange(n)
        if self.selection == "random":
            # Seeded by n, not by the searcher's RNG: choosing a subset must not change the suggestions' stream.
            return np.sort(np.random.default_rng(n).choice(n, size=self.max_points, replace=False))
        if self.selection == "trust_region":
            distance = np.linalg.norm(X - X[np.argmin(y)], axis=1)
            return np.sort(np.argsort(distance, kind="stable")[:self.max_points])
        n_best = max(1, int(round(self.best_share * self.max_points)))
        best = np.argsort(y, kind="stable")[:n_best]
        if self.selection == "best_and_random":
            rest = np.setdiff1d(np.arange(n), best)
            others = np.random.default_rng(n).choice(rest, size=self.max_points - n_best, replace=False)
            return np.sort(np.concatenate([best, others]))
        return np.sort(np.concatenate([best, spread(X, self.max_points - n_best, chosen=best)]))


def spread(X: np.ndarray, count: int, *, chosen: np.ndarray | None = None,
           candidates: np.ndarray | None = None) -> np.ndarray:
    """``count`` indices among ``candidates`` (default: rows not in ``chosen``), each the farthest from all picked.

    Greedy farthest-point (maximin) selection: the first pick is the candidate farthest from ``chosen`` (or the
    first candidate when nothing is chosen); ties go to the earlier row, so the choice is deterministic. Cost
    O(count · n · d).
    """
    chosen = np.zeros(0, dtype=int) if chosen is None else np.asarray(chosen, dtype=int)
    if candidates is None:
        candidates = np.setdiff1d(np.arange(len(X)), chosen)
    candidates = np.asarray(candidates, dtype=int)
    if count <= 0 or not len(candidates):
        return np.zeros(0, dtype=int)
    if count >= len(candidates):
        return candidates
    pool = X[candidates]
    nearest = np.full(len(candidates), np.inf)
    for row in X[chosen]:  # one chosen point at a time: memory O(n), not O(n · len(chosen))
        nearest = np.minimum(nearest, np.linalg.norm(pool - row, axis=1))
    picked = []
    for _ in range(count):
        i = int(np.argmax(nearest))  # first of the ties: np.inf everywhere picks candidate 0
        picked.append(i)
        nearest = np.minimum(nearest, np.linalg.norm(pool - pool[i], axis=1))
        nearest[i] = -1.0
    return candidates[np.array(picked)]
