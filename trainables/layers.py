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


@keras.saving.register_keras_serializable(package="mritune")
class FrozenAwareSpectralNormalization(keras.layers.SpectralNormalization):
    """Keras' spectral normalization, which leaves a frozen layer's weights alone.

    Keras' wrapper re-normalizes (assigns) its kernel and power-iteration vector on every training call, even when
    the layer is frozen: in the DCGAN's combined generator→discriminator model the generator's step would then
    move the frozen discriminator's weights. Here only a trainable layer re-normalizes; the frozen one uses the
    kernel as its last discriminator step left it (already normalized).
    """

    def call(self, inputs, training=False):
        return super().call(inputs, training=bool(training) and self.trainable)
