"""GAN quality metrics that need no pretrained network, in NumPy/SciPy (backend-neutral), and the sample grid.

- ``sliced_wasserstein_distance``: Karras et al. 2018 ("Progressive growing of GANs", appendix D): 7×7
  neighbourhoods drawn from each level of a Laplacian pyramid (down to 16 px), normalised per level and set,
  compared by the sliced Wasserstein distance over random unit directions; the mean over levels, ×1e3 as in
  the paper. Lower is better; two samples of the same distribution score near zero.
- ``mean_ms_ssim``: mean multi-scale SSIM (Wang et al. 2003) of random pairs within one set of images. The
  DCGAN reports it for generated pairs (``ms_ssim_diversity``) beside real pairs (``ms_ssim_real``): mode
  collapse shows as generated pairs far more alike than real ones (values near 1).
Images are float arrays in [-1, 1] of shape (N, H, W) or (N, H, W, 1).
"""

from __future__ import annotations

import numpy as np

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
_MS_SSIM_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def _squeeze(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype=np.float64)
    return images[..., 0] if images.ndim == 4 else images


def _blur(images: np.ndarray) -> np.ndarray:
    from scipy.ndimage import convolve1d

    out = convolve1d(images, _BINOMIAL, axis=1, mode="reflect")
    return convolve1d(out, _BINOMIAL, axis=2, mode="reflect")


def laplacian_pyramid(images: np.ndarray, *, min_size: int = 16) -> list[np.ndarray]:
    """Band-pass levels from full resolution down to ``min_size``; the last level is the low-pass residual."""
    levels, current = [], images
    while current.shape[1] // 2 >= min_size:
        smaller = _blur(current)[:, ::2, ::2]
        upsampled = np.repeat(np.repeat(smaller, 2, axis=1), 2, axis=2)[:, : current.shape[1], : current.shape[2]]
        levels.append(current - _blur(upsampled))
        current = smaller
    levels.append(current)
    return levels


def _patches(level: np.ndarray, per_image: int, rng: np.random.Generator, size: int = 7) -> np.ndarray:
    n, height, width = level.shape
    rows = rng.integers(0, height - size + 1, size=(n, per_image))
    cols = rng.integers(0, width - size + 1, size=(n, per_image))
    offsets = np.arange(size)
    r = rows[..., None, None] + offsets[:, None]
    c = cols[..., None, None] + offsets[None, :]
    return level[np.arange(n)[:, None, None, None], r, c].reshape(n * per_image, size * size)


def _normalised(descriptors: np.ndarray) -> np.ndarray:
    return (descriptors - descriptors.mean()) / (descriptors.std() + 1e-8)


def _sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, directions: int) -> float:
    projections = rng.standard_normal((a.shape[1], directions))
    projections /= np.linalg.norm(projections, axis=0, keepdims=True)
    projected_a = np.sort(a @ projections, axis=0)
    projected_b = np.sort(b @ projections, axis=0)
    return float(np.abs(projected_a - projected_b).mean())


def sliced_wasserstein_distance(
    fake: np.ndarray, real: np.ndarray, *, seed: int = 0, patches_per_image: int = 64, directions: int = 256
) -> float:
    """SWD between two image sets (the smaller set's size is used for both), mean over pyramid levels, ×1e3."""
    rng = np.random.default_rng(seed)
    fake, real = _squeeze(fake), _squeeze(real)
    count = min(len(fake), len(real))
    if count < 2:
        raise ValueError("sliced_wasserstein_distance needs at least 2 images in each set")
    fake = fake[rng.permutation(len(fake))[:count]]
    real = real[rng.permutation(len(real))[:count]]
    distances = []
    for level_fake, level_real in zip(laplacian_pyramid(fake), laplacian_pyramid(real)):
        a = _normalised(_patches(level_fake, patches_per_image, rng))
        b = _normalised(_patches(level_real, patches_per_image, rng))
        distances.append(_sliced_wasserstein(a, b, rng, directions))
    return float(np.mean(distances) * 1e3)


def _gaussian(images: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(images, sigma=sigma, truncate=truncate, axes=(1, 2), mode="reflect")


def ms_ssim(a: np.ndarray, b: np.ndarray, *, window: int = 7) -> np.ndarray:
    """MS-SSIM of image pairs a[i], b[i] with values in [-1, 1]; as many scales (up to 5) as the size allows."""
    x, y = (_squeeze(a) + 1.0) / 2.0, (_squeeze(b) + 1.0) / 2.0
    scales = max(1, min(5, int(np.log2(x.shape[1] / window)) + 1))
    weights = _MS_SSIM_WEIGHTS[:scales] / _MS_SSIM_WEIGHTS[:scales].sum()
    c1, c2, sigma = 0.01**2, 0.03**2, 1.5
    truncate = (window // 2) / sigma
    result = np.ones(len(x))
    for scale in range(scales):
        mu_x, mu_y = _gaussian(x, sigma, truncate), _gaussian(y, sigma, truncate)
        var_x = _gaussian(x * x, sigma, truncate) - mu_x**2
        var_y = _gaussian(y * y, sigma, truncate) - mu_y**2
        cov = _gaussian(x * y, sigma, truncate) - mu_x * mu_y
        contrast = ((2 * cov + c2) / (var_x + var_y + c2)).mean(axis=(1, 2))
        value = contrast
        if scale == scales - 1:
            value = contrast * ((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)).mean(axis=(1, 2))
        result *= np.clip(value, 0.0, None) ** weights[scale]
        if scale < scales - 1:
            x = _downsample(x)
            y = _downsample(y)
    return result


def _downsample(images: np.ndarray) -> np.ndarray:
    n, height, width = images.shape
    images = images[:, : height - height % 2, : width - width % 2]
    return images.reshape(n, height // 2, 2, width // 2, 2).mean(axis=(2, 4))


def mean_ms_ssim(images: np.ndarray, *, pairs: int = 64, seed: int = 0) -> float:
    """Mean MS-SSIM over random distinct pairs within ``images``."""
    images = _squeeze(images)
    if len(images) < 2:
        raise ValueError("mean_ms_ssim needs at least 2 images")
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(images), size=pairs)
    second = (first + rng.integers(1, len(images), size=pairs)) % len(images)  # never the same image
    return float(ms_ssim(images[first], images[second]).mean())


def sample_grid(images: np.ndarray, *, columns: int = 4, border: int = 2) -> np.ndarray:
    """Tile images in [-1, 1] into one uint8 grayscale grid (H, W) with a black border, for logging by step."""
    images = _squeeze(images)
    count, height, width = images.shape
    rows = -(-count // columns)
    grid = np.zeros((rows * (height + border) + border, columns * (width + border) + border), dtype=np.uint8)
    pixels = np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    for index, image in enumerate(pixels):
        top = border + (index // columns) * (height + border)
        left = border + (index % columns) * (width + border)
        grid[top : top + height, left : left + width] = image
    return grid
