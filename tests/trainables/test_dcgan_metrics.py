"""SWD and MS-SSIM on real (synthetic MRI) images and noise; the sample grid."""

from __future__ import annotations

import numpy as np
import pytest

from mritune.trainables.dcgan.images import to_unit_range
from mritune.trainables.dcgan.metrics import mean_ms_ssim, ms_ssim, sample_grid, sliced_wasserstein_distance


@pytest.fixture(scope="module")
def real_halves(small_dataset):
    images = to_unit_range(np.concatenate([small_dataset.x_train, small_dataset.x_val]))
    half = len(images) // 2
    return images[:half], images[half:]


def test_swd_is_lower_for_real_vs_real_than_noise_vs_real(real_halves):
    first, second = real_halves
    noise = np.random.default_rng(0).uniform(-1, 1, first.shape).astype("float32")
    real_vs_real = sliced_wasserstein_distance(first, second, seed=0)
    noise_vs_real = sliced_wasserstein_distance(noise, second, seed=0)
    assert 0 <= real_vs_real < noise_vs_real / 2


def test_swd_is_deterministic_for_a_seed(real_halves):
    first, second = real_halves
    assert sliced_wasserstein_distance(first, second, seed=3) == sliced_wasserstein_distance(first, second, seed=3)


def test_ms_ssim_is_one_for_identical_pairs_and_high_for_a_collapsed_set(real_halves):
    first, _ = real_halves
    np.testing.assert_allclose(ms_ssim(first[:4], first[:4]), 1.0, atol=1e-6)
    collapsed = np.repeat(first[:1], 20, axis=0) + np.random.default_rng(0).normal(0, 0.01, (20, 64, 64, 1))
    assert mean_ms_ssim(collapsed) > 0.9 > mean_ms_ssim(first)


def test_sample_grid_tiles_images_as_uint8():
    images = np.linspace(-1, 1, 16 * 8 * 8).reshape(16, 8, 8, 1)
    grid = sample_grid(images, columns=4, border=2)
    assert grid.shape == (4 * 10 + 2, 4 * 10 + 2) and grid.dtype == np.uint8
    assert grid[2, 2] == 0 and grid[-3, -3] == 255


def test_too_few_images_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2"):
        sliced_wasserstein_distance(np.zeros((1, 32, 32)), np.zeros((5, 32, 32)))
