"""Checks and reshaping of an MRIDataset's arrays before a training uses them."""

from __future__ import annotations

import numpy as np

from mritune.trainables.data.dataset import MRIDataset
from mritune.trainables.data.preprocess import resize


def check_dataset(data: MRIDataset, *, need_test: bool = True) -> None:
    """Refuse a dataset a training cannot use, with a one-line message saying which split is wrong."""
    splits = [("train", data.x_train, data.y_train), ("val", data.x_val, data.y_val)]
    if need_test:
        splits.append(("test", data.x_test, data.y_test))
    for name, images, labels in splits:
        if images.ndim != 3 or images.shape[1] != images.shape[2]:
            raise ValueError(f"x_{name} must have shape (N, S, S) (grayscale squares), got {images.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"x_{name} must hold uint8 pixels, got {images.dtype}")
        if len(images) == 0:
            raise ValueError(f"the {name} split is empty; use a larger dataset or other split fractions")
        if len(labels) != len(images):
            raise ValueError(f"x_{name} has {len(images)} images but y_{name} has {len(labels)} labels")
        if labels.min() < 0 or labels.max() >= data.num_classes:
            raise ValueError(f"y_{name} holds labels outside 0..{data.num_classes - 1}")


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """The images at ``size``×``size`` (the shared INTER_AREA resize), unchanged when already that size."""
    if images.shape[1] == size:
        return images
    return np.stack([resize(image, size) for image in images])


def as_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S) -> float32 (N, S, S, 1) holding the raw 0..255 values (models scale internally)."""
    return images.astype(np.float32)[..., None]
