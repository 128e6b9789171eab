"""Trace each trial's train and predict functions once: fixed-shape inference and optimizers built up front.

Keras traces a new graph for every new input shape. ``model.predict`` on a split whose size is not a multiple of
the batch traces twice (full batches, then the remainder) and every other split size traces again, which is where
the "triggered tf.function retracing" warnings came from. And an optimizer whose slot variables do not exist yet
makes TensorFlow trace the first train step twice (once to create the variables, once to run it): for MobileNetV2
on a CPU each trace costs seconds. ``speedups_enabled()`` False (the benchmark's BEFORE) keeps the old calls.
"""

from __future__ import annotations

import numpy as np

from mritune.trainables.runtime import speedups_enabled


def build_optimizer(model, variables=None) -> None:
    """Create ``model``'s optimizer variables for ``variables`` (default: its trainable ones) before training.

    A loaded model's optimizer is already built and is left alone. ``variables`` must be exactly the variables the
    train step will update, or the optimizer later refuses them as unknown.
    """
    optimizer = getattr(model, "optimizer", None)
    if not speedups_enabled() or optimizer is None or optimizer.built:
        return
    optimizer.build(model.trainable_variables if variables is None else variables)


class BatchPredictor:
    """Inference in batches of one fixed shape: the last batch is zero-padded and its padding dropped.

    Goes through ``model.predict_on_batch``, so it shares Keras's compiled predict function (and its one trace)
    with any other ``predict_on_batch`` call of the same batch size, e.g. the DCGAN's training steps. Padding is
    harmless at inference: batch normalisation uses its moving statistics and dropout is off.
    """

    def __init__(self, *, model, batch_size: int):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.batch_size = model, batch_size

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if not speedups_enabled() or len(images) == 0:
            return np.asarray(self.model.predict(images, batch_size=self.batch_size, verbose=0))
        count, size = len(images), self.batch_size
        padding = (-count) % size
        if padding:
            images = np.concatenate([images, np.zeros((padding, *images.shape[1:]), dtype=images.dtype)])
        outputs = [np.asarray(self.model.predict_on_batch(images[i : i + size])) for i in range(0, len(images), size)]
        return np.concatenate(outputs)[:count]
