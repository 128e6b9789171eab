"""The OOD guard's scores, on arrays (no model): each check computes what it says, a fitted guard survives its
JSON file unchanged, and a flagged image names the check that flagged it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mritune.deploy.ood_fit import fit_gaussians, fit_guard, otsu_level
from mritune.deploy.ood_guard import (
    COLOUR_LIMIT,
    ImageBatch,
    OODGuard,
    colourfulness_of_array,
    colourfulness_of_bytes,
    earth_movers_distance,
    intensity_histograms,
    load_guard,
)


def _blobs(rng, count: int, size: int = 32) -> np.ndarray:
    """Bright ellipses on a dark, noisy background: a stand-in for slices with a black border."""
    images = []
    for _ in range(count):
        image = rng.normal(8, 3, (size, size))
        axes = (int(rng.integers(8, 11)), int(rng.integers(11, 14)))
        cv2.ellipse(image, (size // 2, size // 2), axes, 0, 0, 360, float(rng.uniform(150, 200)), -1)
        images.append(np.clip(image + rng.normal(0, 10, (size, size)), 0, 255))
    return np.stack(images).astype(np.uint8)


def test_mahalanobis_distance_is_the_nearest_class_mean_under_the_shared_precision():
    rng = np.random.default_rng(0)
    vectors, labels = rng.normal(size=(300, 12)), rng.integers(0, 3, 300)
    for components in (None, 5):
        gaussians = fit_gaussians(vectors, labels, components=components)
        query = rng.normal(size=(7, 12))
        if components is not None:
            query_space = (query - gaussians.projection_mean) @ gaussians.projection
        else:
            query_space = query
        direct = [np.einsum("nd,de,ne->n", query_space - m, gaussians.precision, query_space - m)
                  for m in gaussians.class_means]
        np.testing.assert_allclose(gaussians.distances(query), np.sqrt(np.min(direct, axis=0)), rtol=1e-9)


def test_image_statistics():
    rng = np.random.default_rng(1)
    dark_and_bright = np.concatenate([rng.integers(0, 30, 500), rng.integers(180, 256, 500)]).astype(np.uint8)
    level = otsu_level(dark_and_bright.reshape(1, 25, 40))
    assert ((dark_and_bright > level) == (dark_and_bright >= 180)).all(), "foreground = above the level"
    images = _blobs(rng, 4)
    histograms = intensity_histograms(images)
    assert histograms.shape == (4, 32) and np.allclose(histograms.sum(axis=1), 1.0)
    assert earth_movers_distance(histograms[:1], histograms[0])[0] == 0.0
    assert earth_movers_distance(intensity_histograms(255 - images[:1]), histograms[0])[0] > 0.3
    colour = np.zeros((20, 20, 3), dtype=np.uint8)
    colour[..., 2] = 200
    assert colourfulness_of_array(colour) == 200.0 and colourfulness_of_array(images[0]) == 0.0
    gray_as_colour = cv2.cvtColor(images[0], cv2.COLOR_GRAY2BGR)
    for suffix in (".png", ".jpg"):
        assert colourfulness_of_bytes(cv2.imencode(suffix, images[0])[1].tobytes()) == 0.0
        assert colourfulness_of_bytes(cv2.imencode(suffix, gray_as_colour)[1].tobytes()) < 1.0
        assert colourfulness_of_bytes(cv2.imencode(suffix, colour)[1].tobytes()) > COLOUR_LIMIT


@pytest.fixture(scope="module")
def guard() -> OODGuard:
    rng = np.random.default_rng(2)
    train, val = _blobs(rng, 120), _blobs(rng, 60)
    return fit_guard(train_images=train, train_labels=rng.integers(0, 2, 120), val_images=val)


def test_a_fitted_guard_flags_about_one_percent_of_validation_and_names_what_flagged_the_rest(guard):
    assert guard.fitted["val_flagged_fraction"] <= 0.02 and not guard.needs_penultimate
    rng = np.random.default_rng(3)
    held_out = guard.verdicts(ImageBatch.of(_blobs(rng, 100)))
    assert held_out.flagged <= 5
    constant = np.full((1, 32, 32), 90, dtype=np.uint8)
    colourful = ImageBatch.of(_blobs(rng, 1), np.array([40.0]))
    text = np.full((1, 32, 32), 255, dtype=np.uint8)
    cv2.putText(text[0], "MRI", (2, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1)
    assert "near-constant" in guard.verdicts(ImageBatch.of(constant)).reasons[0]
    assert "not grayscale (colour 40.0 > 8)" in guard.verdicts(colourful).reasons[0]
    verdict = guard.verdicts(ImageBatch.of(text))
    assert not verdict.in_distribution[0] and "histogram" in verdict.reasons[0]
    assert verdict.record(0)["ood_score"] == pytest.approx(float(verdict.scores[0]))


def test_the_guard_file_round_trips(guard, tmp_path):
    path = guard.save(tmp_path / "ood_guard.json")
    loaded = load_guard(path, image_size=32)
    batch = ImageBatch.of(_blobs(np.random.default_rng(4), 10))
    np.testing.assert_allclose(loaded.verdicts(batch).scores, guard.verdicts(batch).scores, rtol=1e-12)
    assert loaded.fitted == guard.fitted and loaded.scales == guard.scales
