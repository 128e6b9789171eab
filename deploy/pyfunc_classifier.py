"""The classifier as an MLflow pyfunc: images in (base64, bytes, paths or arrays), class and probabilities out.

`ClassifierPredictor` holds the Keras model and does the work; predict, serve and the pyfunc all use it, and all
decode images with `mritune.trainables.data.preprocess.decode_image`, the same path as training. The pyfunc class is
defined inside `classifier_python_model()` so that importing this module does not import MLflow; MLflow gets
it from the small models-from-code script that `model_logging` writes (no cloudpickle).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mritune.deploy.model_files import (
    CONFIG_ARTIFACT,
    KERAS_ARTIFACT,
    ModelFolder,
    compiled_inference,
    load_keras_model,
    read_config,
)
from mritune.trainables.data.preprocess import ImageDecodeError, decode_image
from mritune.trainables.errors import UserInputError

PROB_PREFIX = "prob_"
# MLflow sets this in its scoring server; file paths are then refused so clients cannot probe the server's disk.
SERVING_ENV_FLAG = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"
DEFAULT_BATCH_SIZE = 64


class ClassifierPredictor:
    """A loaded classifier: uint8 images (N, S, S) → probabilities over ``class_names``."""

    def __init__(self, *, keras_model: Any, image_size: int, class_names: Sequence[str]) -> None:
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
        self._infer = compiled_inference(keras_model, expected_input)

    @classmethod
    def from_folder(cls, folder: ModelFolder) -> ClassifierPredictor:
        if folder.kind != "classifier":
            raise UserInputError(f"{folder.path} holds a {folder.kind}, not a classifier")
        return cls(
            keras_model=load_keras_model(folder.keras_path),
            image_size=folder.image_size,
            class_names=folder.config["class_names"],
        )

    @property
    def columns(self) -> list[str]:
        return ["class"] + [PROB_PREFIX + name for name in self.class_names]

    def decode(self, source: Any) -> np.ndarray:
        """One image (path, encoded bytes or array) → uint8 (S, S), exactly as the training decodes it."""
        return decode_image(source, self.image_size)

    def predict_arrays(self, images: np.ndarray, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """uint8 images (N, S, S) → float probabilities (N, num_classes)."""
        images = np.asarray(images)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim != 3 or images.shape[1:] != (self.image_size, self.image_size):
            raise UserInputError(f"expected images of shape (N, {self.image_size}, {self.image_size}), got {images.shape}")
        if len(images) == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        batches = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size].astype(np.float32)[..., None]
            batches.append(self._infer(chunk))
        return np.concatenate(batches, axis=0)

    def records(self, probs: np.ndarray) -> list[dict]:
        """Probabilities → one dict per image: ``class`` and ``prob_<Class>`` for every class."""
        rows = []
        for row in probs:
            record = {"class": self.class_names[int(np.argmax(row))]}
            record.update({PROB_PREFIX + name: float(p) for name, p in zip(self.class_names, row)})
            rows.append(record)
        return rows

    def predict_input(self, model_input: Any, *, allow_paths: bool):
        """The pyfunc's contract: a DataFrame (column ``image``) or an array batch → a DataFrame of predictions."""
        import pandas as pd

        sources = image_sources(model_input, allow_paths=allow_paths)
        images = np.zeros((len(sources), self.image_size, self.image_size), dtype=np.uint8)
        for index, source in enumerate(sources):
            images[index] = self._decode_item(index, source)
        return pd.DataFrame(self.records(self.predict_arrays(images)), columns=self.columns)

    def _decode_item(self, index: int, source: Any) -> np.ndarray:
        try:
            return self.decode(source)
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

    class MrituneClassifier(mlflow.pyfunc.PythonModel):
        """Pyfunc: DataFrame column ``image`` → DataFrame ``class`` + ``prob_<Class>``."""

        def load_context(self, context):
            config = read_config(Path(context.artifacts[CONFIG_ARTIFACT]))
            self.predictor = ClassifierPredictor(
                keras_model=load_keras_model(context.artifacts[KERAS_ARTIFACT]),
                image_size=int(config["image_size"]),
                class_names=config["class_names"],
            )

        def predict(self, context, model_input, params=None):
            serving = os.environ.get(SERVING_ENV_FLAG, "").lower() == "true"
            return self.predictor.predict_input(model_input, allow_paths=not serving)

    return MrituneClassifier()
