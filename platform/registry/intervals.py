"""A bootstrap 95% interval of a gate metric over seeds x test images, from a few re-runs of one configuration.

Two things make a test score uncertain: the seed a model was trained with, and which images happen to be in the
test split (one image moves the macro-F1 of a 150-image split by several points). The bootstrap resamples both.
Every re-run scores its gate metric on the same ``R`` resamples of the test images (``resample_indices``, drawn
once per search so the re-runs of all configurations share them): a table ``scores[seed, r]``. One bootstrap
replicate draws the seeds with replacement and one of the ``R`` image resamples, and averages
``scores[drawn seeds, r]``; the interval is the 2.5th and 97.5th percentile of the replicates (percentile
bootstrap). The same image resample for every drawn seed keeps the seeds' shared test set shared, as it is.
Computing the table in the re-runs themselves (``platform/registry/rerun.py``) keeps the cost in the workers: a resample
of the classifier's macro-F1 is a bincount, one of the DCGAN's sliced Wasserstein distance about half a second.

The interval's centre is the plain mean of the re-runs' own test scores (on all test images), not a bootstrap
mean. Pure NumPy, no MLflow: the tests assert it directly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mritune.platform.registry.promotion import Interval

REPLICATES = 4000  # bootstrap replicates drawn from the seeds x resamples table (cheap: means of a small table)
LEVEL = 0.95


def resample_indices(n_images: int, resamples: int, *, seed: int) -> np.ndarray:
    """``(resamples, n_images)`` test-image indices, each row a draw with replacement.

    Raises:
        ValueError: Fewer than one image or one resample.
    """
    if n_images < 1 or resamples < 1:
        raise ValueError(f"a bootstrap needs at least one test image and one resample, got {n_images}, {resamples}")
    return np.random.default_rng([seed, n_images]).integers(0, n_images, size=(resamples, n_images))


def bootstrap_interval(point_scores: Sequence[float], resampled: np.ndarray | Sequence[Sequence[float]], *,
                       seed: int = 0, replicates: int = REPLICATES, level: float = LEVEL) -> Interval:
    """The mean of ``point_scores`` (one per seed) and its percentile-bootstrap interval over seeds x images.

    Args:
        point_scores: Each re-run's gate metric on all test images.
        resampled: ``[seed][r]``: each re-run's gate metric on the shared image resample ``r``.
        seed: The bootstrap's random seed (the interval is reproducible).
        replicates: How many (seeds, image resample) draws.
        level: The interval's coverage.

    Raises:
        ValueError: No seeds, rows of different lengths, a row count that is not the seeds', non-finite scores.

    Example:
        >>> interval = bootstrap_interval([0.70, 0.74], [[0.69, 0.72, 0.70], [0.73, 0.75, 0.74]])
        >>> round(interval.mean, 4), interval.low < interval.mean < interval.high
        (0.72, True)
    """
    points = np.asarray(point_scores, dtype=np.float64)
    table = np.asarray(resampled, dtype=np.float64)
    if points.ndim != 1 or len(points) == 0:
        raise ValueError("bootstrap_interval needs one point score per seed")
    if table.ndim != 2 or table.shape[0] != len(points) or table.shape[1] == 0:
        raise ValueError(f"resampled must be a {len(points)} x R table of scores, got shape {table.shape}")
    if not (np.isfinite(points).all() and np.isfinite(table).all()):
        raise ValueError("bootstrap_interval got a non-finite score")
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, len(points), size=(replicates, len(points)))
    images = rng.integers(0, table.shape[1], size=(replicates, 1))
    draws = table[seeds, images].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return Interval(mean=float(points.mean()), low=float(low), high=float(high))
