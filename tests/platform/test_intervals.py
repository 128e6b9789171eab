"""The bootstrap interval over seeds x test images (platform/registry/intervals.py): pure NumPy, asserted directly."""

from __future__ import annotations

import numpy as np
import pytest

from mritune.platform.registry.intervals import bootstrap_interval, resample_indices
from mritune.trainables.classifier.evaluation import macro_f1


def test_resample_indices_draw_with_replacement_and_repeat_for_a_seed():
    indices = resample_indices(150, 40, seed=3)
    assert indices.shape == (40, 150) and indices.min() >= 0 and indices.max() < 150
    assert all(len(set(row)) < 150 for row in indices), "with replacement: some image drawn twice in each row"
    np.testing.assert_array_equal(indices, resample_indices(150, 40, seed=3))
    assert not np.array_equal(indices, resample_indices(150, 40, seed=4))
    with pytest.raises(ValueError, match="at least one test image"):
        resample_indices(0, 10, seed=0)


def test_the_interval_is_centred_on_the_seeds_mean_and_reproducible():
    points = [0.70, 0.74, 0.66]
    table = [[0.69, 0.72, 0.71, 0.70], [0.73, 0.76, 0.74, 0.75], [0.64, 0.67, 0.66, 0.65]]
    interval = bootstrap_interval(points, table, seed=1)
    assert interval.mean == pytest.approx(np.mean(points))
    assert 0.64 <= interval.low < interval.mean < interval.high <= 0.76
    assert bootstrap_interval(points, table, seed=1) == interval


def test_identical_scores_give_a_point_interval_and_spread_widens_it():
    flat = bootstrap_interval([0.5, 0.5], [[0.5] * 5, [0.5] * 5])
    assert (flat.low, flat.mean, flat.high) == (0.5, 0.5, 0.5)
    rng = np.random.default_rng(0)
    narrow = bootstrap_interval([0.5] * 4, 0.5 + 0.01 * rng.standard_normal((4, 200)))
    wide = bootstrap_interval([0.5] * 4, 0.5 + 0.05 * rng.standard_normal((4, 200)))
    assert wide.high - wide.low > 3 * (narrow.high - narrow.low)


@pytest.mark.parametrize(("points", "table", "message"), [
    ([], [[0.5]], "one point score per seed"),
    ([0.5, 0.6], [[0.5, 0.6]], "2 x R table"),
    ([0.5], [[float("nan")]], "non-finite"),
])
def test_bad_tables_are_refused(points, table, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(points, table)


def test_the_interval_covers_the_true_mean_of_a_simulated_classifier_about_95_percent_of_the_time():
    """A simulated 4-class classifier whose accuracy varies by seed, on a fresh 150-image test set each time: the
    interval from 3 seeds x the test images should hold the expected macro-F1 (of infinitely many seeds and
    images) in most of 200 repetitions (196 when written). Few seeds make a bootstrap too narrow; the image
    resampling widens it."""
    rng = np.random.default_rng(2024)
    truth = _expected_macro_f1(rng)
    hits, widths = 0, []
    for _ in range(200):
        labels = rng.integers(0, 4, 150)
        scores, tables = [], []
        indices = resample_indices(150, 200, seed=int(rng.integers(1 << 30)))
        for accuracy in rng.normal(0.7, 0.03, size=3):
            predicted = np.where(rng.random(150) < accuracy, labels, rng.integers(0, 4, 150))
            scores.append(macro_f1(labels, predicted, 4))
            tables.append([macro_f1(labels[row], predicted[row], 4) for row in indices])
        interval = bootstrap_interval(scores, tables, seed=int(rng.integers(1 << 30)))
        hits += interval.low <= truth <= interval.high
        widths.append(interval.high - interval.low)
    assert hits >= 0.85 * 200, hits
    assert np.mean(widths) < 0.2, "not covering by being uselessly wide (about +-0.06 here)"


def _expected_macro_f1(rng) -> float:
    labels = rng.integers(0, 4, 400_000)
    accuracy = rng.normal(0.7, 0.03, size=len(labels))
    predicted = np.where(rng.random(len(labels)) < accuracy, labels, rng.integers(0, 4, len(labels)))
    return macro_f1(labels, predicted, 4)
