"""The classifier model: raw uint8 pixels in (as float32, shape (S, S, 1)), softmax over the classes out.

Backend-neutral Keras 3 (`keras.layers`, `keras.ops`, no Lambda layers), so a saved model loads with
`keras.saving.load_model(path, safe_mode=True)` under any backend once `mritune.trainables.layers` is imported.
Scaling to the backbone's range happens inside the model, so deploy feeds the same uint8 arrays training saw.
"""

from __future__ import annotations

import urllib.error
import weakref
from pathlib import Path

from mritune.trainables.classifier.backbones import (
    SCALING_CAFFE,
    SCALING_TF,
    SCALING_TORCH,
    SCALING_UNIT,
    Backbone,
    get_backbone,
)
from mritune.trainables.classifier.config import ClassifierConfig
from mritune.trainables.errors import MissingInputError, ServiceUnavailable, UserInputError

# Batch-norm statistics for evaluation are recomputed after every epoch ("precise BN", Wu & Johnson 2021): the
# weights frozen, the moving mean and variance become the true average of the batch statistics over
# PRECISE_BN_BATCHES training batches (recompute_batch_norm_statistics). A running average during training lags
# weights that move fast: with Keras' default momentum (0.99, ~100 steps) eval-mode predictions of a quick
# search's few epochs of ~20 steps collapsed to one class; the earlier workaround, momentum 0 (the last training
# batch's statistics), learned but made val scores jump from epoch to epoch (benchmarks/precise_bn.py measures
# both). The momentum below only shapes the statistics between two recomputations, which nothing reads.
BN_MOMENTUM = 0.99
# Full training batches whose statistics are averaged (fvcore's default is 200; the quick data's train split
# holds 21 batches of 32, so this is one pass over it). 0 turns the recomputation off (the benchmark's "before").
PRECISE_BN_BATCHES = 50
# model -> its traced training-mode forward pass (one trace per model, dropped with the model).
_TRAINING_FORWARDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# ImageNet statistics of Keras' "torch" (DenseNet) and "caffe" (ResNet50) preprocess_input modes.
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def build_classifier(config: ClassifierConfig, *, num_classes: int):
    """Build and compile the classifier described by ``config`` (backbone from ``backbones.py``'s registry)."""
    import keras

    backbone = get_backbone(config.backbone)
    size = config.image_size
    inputs = keras.Input(shape=(size, size, 1), dtype="float32", name="pixels")
    x = _augmentation(config)(inputs) if config.augmentation > 0 else inputs
    x = _input_scaling(backbone.input_scaling, x)
    x = _small_cnn(config)(x) if backbone.application is None else _application(backbone, config)(x)
    outputs = _head(config, num_classes)(x)
    model = keras.Model(inputs, outputs, name=f"mritune_{config.backbone}")
    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def _input_scaling(scaling: str, x):
    """Raw 0..255 gray → the range and channels the backbone was built for (Keras' preprocess_input modes)."""
    import keras

    from mritune.trainables.layers import GrayscaleToRGB

    if scaling == SCALING_UNIT:  # the small CNN: one channel
        return keras.layers.Rescaling(1.0 / 255.0, name="to_0_1")(x)
    if scaling == SCALING_TF:
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_minus1_1")(x)
    elif scaling == SCALING_TORCH:
        x = keras.layers.Rescaling(1.0 / 255.0, name="to_0_1")(x)
    x = GrayscaleToRGB(name="gray_to_rgb")(x)
    if scaling == SCALING_TORCH:
        x = keras.layers.Normalization(mean=IMAGENET_MEAN_RGB, variance=[s * s for s in IMAGENET_STD_RGB],
                                       name="imagenet_mean_std")(x)
    elif scaling == SCALING_CAFFE:
        # Caffe mode flips RGB to BGR first; the three gray channels are equal, so only the mean order matters.
        x = keras.layers.Normalization(mean=CAFFE_MEAN_BGR, variance=[1.0, 1.0, 1.0], name="imagenet_mean_bgr")(x)
    return x


def make_optimizer(config: ClassifierConfig):
    import keras

    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=config.learning_rate)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=config.learning_rate, weight_decay=1e-4)
    return keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=0.9, nesterov=True)


def _augmentation(config: ClassifierConfig):
    """Flips, rotations and zoom whose strength scales with ``augmentation``; inactive at inference."""
    import keras

    strength = config.augmentation
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.1 * strength, fill_mode="constant", fill_value=0.0),
            keras.layers.RandomZoom(0.2 * strength, fill_mode="constant", fill_value=0.0),
        ],
        name="augmentation",
    )


def _application(backbone: Backbone, config: ClassifierConfig):
    """A Keras application without its top, average-pooled; from scratch, ImageNet or a local weights file."""
    import keras

    weights = _resolve_weights(config.weights)
    size = config.image_size
    extra = {"alpha": config.alpha} if "alpha" in backbone.settings else {}
    constructor = getattr(keras.applications, backbone.application)
    try:
        model = constructor(input_shape=(size, size, 3), include_top=False, weights=weights, pooling="avg", **extra)
    except Exception as exc:  # keras.utils.get_file raises a bare Exception wrapping the URLError
        if weights == "imagenet" and _is_download_failure(exc):
            raise ServiceUnavailable(
                f"could not download the ImageNet weights for {backbone.application} (no internet, and none in "
                "the Keras cache ~/.keras/models); set weights to none or to the path of a local weights file"
            ) from exc
        raise
    freeze_backbone(model, config.fine_tune_fraction)
    return model


def batch_norm_layers(model) -> list:
    """Every BatchNormalization layer in ``model``, nested models included, in call order."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(batch_norm_layers(layer))
    return found


def recompute_batch_norm_statistics(model, images, *, batch_size: int, seed: int,
                                    max_batches: int | None = None) -> int:
    """Set the moving statistics of ``model``'s training batch-norm layers to their average over training batches.

    The forward passes run in training mode (batch statistics, augmentation on, as in training) with no weight
    update; each trainable BatchNormalization layer's moving mean and variance end as the plain mean of the
    batches' statistics. Frozen layers (``trainable`` False, e.g. a pretrained backbone's lower part) run in
    inference mode and keep theirs. Only full batches are used, drawn in a random order from ``seed``, unless
    the split is smaller than one batch.

    Args:
        model: A built Keras model.
        images: The training split, as the model takes it (float32, N×S×S×1).
        batch_size: Images per batch (the training batch size: statistics depend on it).
        seed: Which images make the batches.
        max_batches: At most this many batches (default ``PRECISE_BN_BATCHES``); 0 leaves the model alone.

    Returns:
        The number of batches averaged (0 when the model has no trainable batch norm or ``max_batches`` is 0).

    Example:
        >>> recompute_batch_norm_statistics(model, x_train, batch_size=32, seed=3)  # doctest: +SKIP
        21
    """
    import numpy as np

    layers = [layer for layer in batch_norm_layers(model) if layer.trainable]
    limit = PRECISE_BN_BATCHES if max_batches is None else max_batches
    if not layers or limit <= 0 or len(images) == 0:
        return 0
    order = np.random.default_rng(seed).permutation(len(images))
    count = min(limit, max(1, len(images) // batch_size))
    momenta = [layer.momentum for layer in layers]
    sums = [[np.zeros(layer.moving_mean.shape), np.zeros(layer.moving_variance.shape)] for layer in layers]
    forward = _training_forward(model)
    try:
        for layer in layers:  # each forward pass leaves exactly its batch's statistics in the moving ones
            layer.momentum = 0.0
        for k in range(count):
            forward(images[order[k * batch_size : (k + 1) * batch_size]])
            for total, layer in zip(sums, layers):
                total[0] += np.asarray(layer.moving_mean)
                total[1] += np.asarray(layer.moving_variance)
        for (mean_sum, variance_sum), layer in zip(sums, layers):
            layer.moving_mean.assign(mean_sum / count)
            layer.moving_variance.assign(variance_sum / count)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return count


def _training_forward(model):
    """``model(x, training=True)``; traced once per model under TensorFlow (eager calls cost ~20 ms a batch)."""
    import keras

    forward = _TRAINING_FORWARDS.get(model)
    if forward is None:
        forward = lambda x: model(x, training=True)  # noqa: E731
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            forward = tf.function(forward, reduce_retracing=True)
        _TRAINING_FORWARDS[model] = forward
    return forward


def freeze_backbone(backbone, fine_tune_fraction: float) -> None:
    """Unfreeze the top ``fine_tune_fraction`` of the backbone's layers; freeze the rest."""
    layers = backbone.layers
    first_trainable = len(layers) - round(fine_tune_fraction * len(layers))
    for index, layer in enumerate(layers):
        layer.trainable = index >= first_trainable


def _resolve_weights(weights: str) -> str | None:
    if weights == "none":
        return None
    if weights == "imagenet":
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise MissingInputError(f"weights file {weights} not found; set weights to none, imagenet or an existing file")
    # Keras reads both as weights only (HDF5 arrays; the .keras zip's weights file): no code, no pickle.
    if not path.name.endswith((".weights.h5", ".keras")):
        raise UserInputError(f"weights file {weights} must be a Keras .weights.h5 or .keras file")
    return str(path)


def _is_download_failure(exc: BaseException) -> bool:
    chain = [exc, exc.__cause__, exc.__context__]
    return any(isinstance(e, (urllib.error.URLError, ConnectionError, TimeoutError)) for e in chain) or (
        "URL fetch failure" in str(exc)
    )


def _small_cnn(config: ClassifierConfig):
    """Three conv blocks from scratch (the original's from-scratch baseline), global-average pooled."""
    import keras

    regularizer = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    size = config.image_size
    inputs = keras.Input(shape=(size, size, 1))
    x = inputs
    for filters in (32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=regularizer)(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="small_cnn")


def _head(config: ClassifierConfig, num_classes: int):
    import keras

    regularizer = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    layers = [
        keras.layers.Dropout(config.dropout, name="head_dropout_1"),
        keras.layers.Dense(config.dense_units, activation="relu", kernel_regularizer=regularizer, name="head_dense"),
        keras.layers.Dropout(config.dropout, name="head_dropout_2"),
        # float32 output even under mixed precision: softmax in float16 loses the small classes' probabilities.
        keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities"),
    ]
    return keras.Sequential(layers, name="head")
