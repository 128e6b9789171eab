"""The classifier as an MLflow pyfunc: images in (base64, bytes, paths or arrays); class, probabilities and the OOD
guard's verdict out.

`ClassifierPredictor` holds the Keras model and, when the model was registered with one, its OOD guard
(``deploy/ood_guard.py``); predict, serve and the pyfunc all use it, and all decode images with
`mritune.trainables.data.preprocess.decode_image`, the same path as training. Every output row has the columns
``class``, ``prob_<Class>``, ``ood_score``, ``in_distribution`` and ``ood_reason``; the last three are empty for a
model registered without a guard. The pyfunc class is defined inside `classifier_python_model()` so that importing
this module does not import MLflow; MLflow gets it from the small models-from-code script that `model_logging`
writes (no cloudpickle). This module travels inside the registered model (``model_logging.PYFUNC_MODULES``).
"""

from __future__ import annotations

import base64
import logging
import binascii
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mritune.deploy.model_files import (
    CONFIG_ARTIFACT,
    GUARD_ARTIFACT,
    KERAS_ARTIFACT,
    ModelFolder,
    compiled_inference,
    load_keras_model,
    read_config,
)
from mritune.deploy.ood_guard import (
    NO_GUARD_MESSAGE,
    OOD_COLUMNS,
    GuardVerdicts,
    ImageBatch,
    OODGuard,
    decode_with_colour,
    empty_record,
    load_guard,
    penultimate_model,
)
from mritune.trainables.data.preprocess import ImageDecodeError, decode_image
from mritune.trainables.errors import UserInputError

logger = logging.getLogger(__name__)
PROB_PREFIX = "prob_"
# MLflow sets this in its scoring server; file paths are then refused so clients cannot probe the server's disk.
SERVING_ENV_FLAG = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"
DEFAULT_BATCH_SIZE = 64


class ClassifierPredictor:
    """A loaded classifier: uint8 images (N, S, S) → probabilities over ``class_names``, and the guard's verdicts.

    ``guard`` None: a model registered without an OOD guard; its guard columns stay empty.
    """

    def __init__(self, *, keras_model: Any, image_size: int, class_names: Sequence[str],
                 guard: OODGuard | None = None) -> None:
        expected_input = (image_size, image_size, 1)
        if tuple(keras_model.input_shape[1:]) != expected_input:
            raise UserInputError(f"classifier input shape {keras_model.input_shape[1:]} is not {expected_input}")
        if keras_model.output_shape[-1] != len(class_names):
            raise UserInputError(
                f"classifier has {keras_model.output_shape[-1]} outputs but {len(class_names)} class names"
            )
        self.keras_model = keras_model
        self.image_size = int(image_size)
        self.class_names = tuple(class_names)
        self.guard = guard
        # With a feature-level guard one forward pass gives [probabilities, penultimate features].
        self._with_features = guard is not None and guard.needs_penultimate
        network = penultimate_model(keras_model) if self._with_features else keras_model
        self._infer = compiled_inference(network, expected_input)

    @classmethod
    def from_folder(cls, folder: ModelFolder) -> ClassifierPredictor:
        if folder.kind != "classifier":
            raise UserInputError(f"{folder.path} holds a {folder.kind}, not a classifier")
        return cls(
            keras_model=load_keras_model(folder.keras_path),
            image_size=folder.image_size,
            class_names=folder.config["class_names"],
            guard=None if folder.guard_path is None else load_guard(folder.guard_path, image_size=folder.image_size),
        )

    @property
    def columns(self) -> list[str]:
        return ["class"] + [PROB_PREFIX + name for name in self.class_names] + list(OOD_COLUMNS)

    def decode(self, source: Any) -> np.ndarray:
        """One image (path, encoded bytes or array) → uint8 (S, S), exactly as the training decodes it."""
        return decode_image(source, self.image_size)

    def decode_checked(self, source: Any) -> tuple[np.ndarray, float]:
        """One image → uint8 (S, S) as :meth:`decode`, and its colourfulness for the guard (0 without a guard)."""
        if self.guard is None:
            return self.decode(source), 0.0
        return decode_with_colour(source, self.image_size)

    def predict_arrays(self, images: np.ndarray, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """uint8 images (N, S, S) → float probabilities (N, num_classes)."""
        return self._forward(images, batch_size)[0]

    def predict_guarded(self, images: np.ndarray, colourfulness: np.ndarray | None = None, *,
                        batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[np.ndarray, GuardVerdicts | None]:
        """uint8 images (N, S, S) → probabilities and the guard's verdicts (None for a model without a guard)."""
        probs, features = self._forward(images, batch_size)
        if self.guard is None:
            return probs, None
        return probs, self.guard.verdicts(ImageBatch.of(self._checked(images), colourfulness), features)

    def _forward(self, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        images = self._checked(images)
        if len(images) == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float32), None
        probs, features = [], []
        for start in range(0, len(images), batch_size):
            out = self._infer(images[start : start + batch_size].astype(np.float32)[..., None])
            probs.append(out[0] if self._with_features else out)
            features.append(out[1] if self._with_features else None)
        return np.concatenate(probs, axis=0), np.concatenate(features, axis=0) if self._with_features else None

    def _checked(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim != 3 or images.shape[1:] != (self.image_size, self.image_size):
            raise UserInputError(f"expected images of shape (N, {self.image_size}, {self.image_size}), got {images.shape}")
        return images

    def records(self, probs: np.ndarray, verdicts: GuardVerdicts | None = None) -> list[dict]:
        """One dict per image: ``class``, ``prob_<Class>`` for every class, and the guard's columns."""
        rows = []
        for index, row in enumerate(probs):
            record = {"class": self.class_names[int(np.argmax(row))]}
            record.update({PROB_PREFIX + name: float(p) for name, p in zip(self.class_names, row)})
            record.update(empty_record() if verdicts is None else verdicts.record(index))
            rows.append(record)
        return rows

    def predict_input(self, model_input: Any, *, allow_paths: bool):
        """The pyfunc's contract: a DataFrame (column ``image``) or an array batch → a DataFrame of predictions."""
        import pandas as pd

        sources = image_sources(model_input, allow_paths=allow_paths)
        images = np.zeros((len(sources), self.image_size, self.image_size), dtype=np.uint8)
        colour = np.zeros(len(sources))
        for index, source in enumerate(sources):
            images[index], colour[index] = self._decode_item(index, source)
        probs, verdicts = self.predict_guarded(images, colour)
        return pd.DataFrame(self.records(probs, verdicts), columns=self.columns)

    def _decode_item(self, index: int, source: Any) -> tuple[np.ndarray, float]:
        try:
            return self.decode_checked(source)
        except (ImageDecodeError, OSError) as exc:
            raise ImageDecodeError(f"image {index}: {exc}") from exc


def image_sources(model_input: Any, *, allow_paths: bool) -> list:
    """Split a pyfunc input into one source per image: bytes, an array, or (when allowed) a file path."""
    import pandas as pd

    if isinstance(model_input, np.ndarray) and model_input.ndim in (3, 4):
        return list(model_input)
    if isinstance(model_input, dict):
        model_input = pd.DataFrame(model_input)
    if isinstance(model_input, pd.DataFrame):
        if "image" not in model_input.columns:
            raise UserInputError(f"input has columns {list(model_input.columns)}; expected a column 'image'")
        values = list(model_input["image"])
    elif isinstance(model_input, (list, tuple)):
        values = list(model_input)
    else:
        raise UserInputError(f"unsupported input {type(model_input).__name__}; pass a DataFrame with column 'image'")
    return [_source_from_value(i, v, allow_paths) for i, v in enumerate(values)]


def _source_from_value(index: int, value: Any, allow_paths: bool):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, Path) or (isinstance(value, str) and allow_paths and _looks_like_file(value)):
        if not allow_paths:
            raise ImageDecodeError(f"image {index}: file paths are not accepted here; send the image bytes")
        return Path(value)
    if isinstance(value, str):
        return decode_base64(value, index=index)
    raise ImageDecodeError(f"image {index}: unsupported value of type {type(value).__name__}")


def decode_base64(text: str, *, index: int = 0) -> bytes:
    """Base64 (optionally a ``data:image/...;base64,`` URL) → bytes; a one-line ImageDecodeError otherwise."""
    payload = text.split(",", 1)[1] if text.startswith("data:") and "," in text else text
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError(f"image {index}: not valid base64 ({exc})") from exc


def _looks_like_file(text: str) -> bool:
    # Base64 text is never this long as a path, and an OSError from an odd string just means "not a file".
    try:
        return len(text) < 4096 and Path(text).is_file()
    except OSError:
        return False


def classifier_python_model():
    """The mlflow.pyfunc.PythonModel for the classifier (MLflow is imported here, not at module import)."""
    import mlflow.pyfunc
    import pandas as pd

    class MrituneClassifier(mlflow.pyfunc.PythonModel):
        """Pyfunc: DataFrame column ``image`` → DataFrame ``class`` + ``prob_<Class>``."""

        def load_context(self, context):
            config = read_config(Path(context.artifacts[CONFIG_ARTIFACT]))
            guard_path = context.artifacts.get(GUARD_ARTIFACT)  # absent: registered before the OOD guard
            if guard_path is None:
                logger.warning(NO_GUARD_MESSAGE)
            self.predictor = ClassifierPredictor(
                keras_model=load_keras_model(context.artifacts[KERAS_ARTIFACT]),
                image_size=int(config["image_size"]),
                class_names=config["class_names"],
                guard=None if guard_path is None else load_guard(guard_path, image_size=int(config["image_size"])),
            )

        def predict(self, context, model_input, params=None):
            serving = os.environ.get(SERVING_ENV_FLAG, "").lower() == "true"
            return self.predictor.predict_input(model_input, allow_paths=not serving)

        # A type hint MLflow takes as "no schema inference" (the signature is logged explicitly, with an input
        # example): without one MLflow warns at every class creation, at registration and at every load. Set as an
        # object, not a string, because this module's annotations are postponed and pandas is imported here.
        predict.__annotations__ = {"model_input": pd.DataFrame}

    return MrituneClassifier()
