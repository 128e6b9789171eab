"""The DCGAN generator as an MLflow pyfunc: ``n`` (and an optional ``seed``) in, PNG images out.

`GeneratorSampler` holds the Keras generator (input: standard-normal noise (latent_dim,), output (S, S, 1) in
[-1, 1]) and turns its output into uint8 grayscale images. A generator registered with an OOD guard (fitted on the
real training images, ``deploy/ood_fit.py``) also scores its own samples: the pyfunc's rows then carry
``ood_score``, ``in_distribution`` and ``ood_reason`` (empty without a guard). As for the classifier, the
PythonModel class is defined inside a function so importing this module does not import MLflow; this module
travels inside the registered model (``model_logging.PYFUNC_MODULES``).
"""

from __future__ import annotations

import base64
import logging
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
    empty_record,
    load_guard,
)
from mritune.trainables.errors import UserInputError

logger = logging.getLogger(__name__)
MAX_SAMPLES = 4096
SAMPLE_BATCH_SIZE = 64


class GeneratorSampler:
    """A loaded generator: ``sample(n, seed)`` → uint8 images (n, S, S); ``score`` → the guard's verdicts."""

    def __init__(self, *, keras_model: Any, latent_dim: int, image_size: int, guard: OODGuard | None = None) -> None:
        if tuple(keras_model.input_shape[1:]) != (latent_dim,):
            raise UserInputError(f"generator input shape {keras_model.input_shape[1:]} is not ({latent_dim},)")
        if tuple(keras_model.output_shape[1:]) != (image_size, image_size, 1):
            expected = (image_size, image_size, 1)
            raise UserInputError(f"generator output shape {keras_model.output_shape[1:]} is not {expected}")
        self.keras_model = keras_model
        self.latent_dim = int(latent_dim)
        self.image_size = int(image_size)
        self.guard = guard
        self._infer = compiled_inference(keras_model, (self.latent_dim,))

    @classmethod
    def from_folder(cls, folder: ModelFolder) -> GeneratorSampler:
        if folder.kind != "generator":
            raise UserInputError(f"{folder.path} holds a {folder.kind}, not a generator; pass a mritune-dcgan model")
        return cls(
            keras_model=load_keras_model(folder.keras_path),
            latent_dim=int(folder.config["latent_dim"]),
            image_size=folder.image_size,
            guard=None if folder.guard_path is None else load_guard(folder.guard_path, image_size=folder.image_size),
        )

    def sample(self, n: int, *, seed: int | None = None) -> np.ndarray:
        """``n`` images as uint8 (n, S, S); the same seed gives the same images."""
        if not 1 <= n <= MAX_SAMPLES:
            raise UserInputError(f"n must be between 1 and {MAX_SAMPLES}, got {n}")
        noise = np.random.default_rng(seed).standard_normal((n, self.latent_dim)).astype(np.float32)
        chunks = [self._infer(noise[start : start + SAMPLE_BATCH_SIZE]) for start in range(0, n, SAMPLE_BATCH_SIZE)]
        return to_uint8(np.concatenate(chunks, axis=0)[..., 0])

    def score(self, images: np.ndarray) -> GuardVerdicts | None:
        """The guard's verdicts on generated uint8 images (n, S, S); None for a generator without a guard."""
        return None if self.guard is None else self.guard.verdicts(ImageBatch.of(images))

    def predict_input(self, model_input: Any):
        """The pyfunc's contract: rows of ``n`` and optional ``seed`` → DataFrame ``row``, ``image`` (base64 PNG)
        and the guard's columns."""
        import pandas as pd

        frame = pd.DataFrame(model_input) if not isinstance(model_input, pd.DataFrame) else model_input
        if "n" not in frame.columns:
            raise UserInputError(f"input has columns {list(frame.columns)}; expected 'n' and optionally 'seed'")
        records = []
        for row_index, row in enumerate(frame.to_dict("records")):
            seed = row.get("seed")
            seed = None if seed is None or (isinstance(seed, float) and np.isnan(seed)) else int(seed)
            images = self.sample(int(row["n"]), seed=seed)
            verdicts = self.score(images)
            for index, image in enumerate(images):
                guard = empty_record() if verdicts is None else verdicts.record(index)
                records.append({"row": row_index, "image": png_base64(image), **guard})
        return pd.DataFrame(records, columns=["row", "image", *OOD_COLUMNS])


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1] → uint8 [0, 255] (the inverse of the training's scaling)."""
    return np.clip(np.rint((np.asarray(images, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return encoded.tobytes()


def png_base64(image: np.ndarray) -> str:
    return base64.b64encode(png_bytes(image)).decode("ascii")


def generator_python_model():
    """The mlflow.pyfunc.PythonModel for the generator (MLflow is imported here, not at module import)."""
    import mlflow.pyfunc
    import pandas as pd

    class MrituneGenerator(mlflow.pyfunc.PythonModel):
        """Pyfunc: DataFrame ``n``, ``seed`` → DataFrame ``row``, ``image`` (base64 PNG)."""

        def load_context(self, context):
            config = read_config(Path(context.artifacts[CONFIG_ARTIFACT]))
            guard_path = context.artifacts.get(GUARD_ARTIFACT)  # absent: registered before the OOD guard
            if guard_path is None:
                logger.warning(NO_GUARD_MESSAGE)
            self.sampler = GeneratorSampler(
                keras_model=load_keras_model(context.artifacts[KERAS_ARTIFACT]),
                latent_dim=int(config["latent_dim"]),
                image_size=int(config["image_size"]),
                guard=None if guard_path is None else load_guard(guard_path, image_size=int(config["image_size"])),
            )

        def predict(self, context, model_input, params=None):
            return self.sampler.predict_input(model_input)

        # A type hint MLflow takes as "no schema inference" (the signature is logged explicitly, with an input
        # example): without one MLflow warns at every class creation, at registration and at every load. Set as an
        # object, not a string, because this module's annotations are postponed and pandas is imported here.
        predict.__annotations__ = {"model_input": pd.DataFrame}

    return MrituneGenerator()
