"""Custom Keras layers the saved models use; registered so `keras.saving.load_model(safe_mode=True)` restores them.

Loaders (deploy, the platform's registry) import this module before loading a model. Everything here is written
with `keras.ops`, so the layers run under any Keras 3 backend (TensorFlow, JAX, PyTorch).
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="mritune")
class GrayscaleToRGB(keras.layers.Layer):
    """Repeat a single grayscale channel three times, for backbones built for RGB input (MobileNetV2)."""

    def call(self, inputs):
        return keras.ops.concatenate([inputs, inputs, inputs], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)
