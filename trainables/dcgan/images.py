"""The DCGAN's image helpers, shared by its training and its test evaluation (which therefore import this module,
not each other): the generator's value range, the held-out sample size and writing a sample grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mritune.trainables.dcgan.metrics import sample_grid

EVAL_IMAGES = 256  # held-out real images (and as many generated) for SWD and the discriminator accuracies


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S) -> float32 (N, S, S, 1) in [-1, 1], the generator's tanh range."""
    return (images.astype(np.float32) / 127.5 - 1.0)[..., None]


def write_sample_grid(images: np.ndarray, path: Path) -> Path:
    """A 4-column PNG grid of generated images (values in [-1, 1])."""
    return write_png(sample_grid(images), path)


def write_png(grid: np.ndarray, path: Path) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), grid):
        raise OSError(f"could not write {path}")
    return path
