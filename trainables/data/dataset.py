"""The in-memory MRI dataset passed between the data layer, the trainings, the platform and deploy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mritune.trainables.data.classes import CLASS_NAMES


@dataclass(frozen=True)
class MRIDataset:
    """Decoded images and labels, already split.

    Images are uint8 arrays of shape (N, image_size, image_size): grayscale, resized, not scaled. Scaling to the
    model's range happens inside the models, so that the pyfunc and training share one preprocessing path.
    Labels are int64 indices into ``class_names``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_size: int
    fingerprint: str
    layout: str = "synthetic"
    class_names: tuple[str, ...] = CLASS_NAMES
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (relative path, reason)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> dict:
        def counts(y: np.ndarray) -> dict[str, int]:
            return {name: int((y == i).sum()) for i, name in enumerate(self.class_names)}

        return {
            "fingerprint": self.fingerprint,
            "layout": self.layout,
            "image_size": self.image_size,
            "train": counts(self.y_train),
            "val": counts(self.y_val),
            "test": counts(self.y_test),
        }
