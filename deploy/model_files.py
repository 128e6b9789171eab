"""Reading a downloaded mritune model folder: the MLmodel file, its safety check, and where the Keras file is.

A model folder is what MLflow writes for our "models from code" pyfunc: an ``MLmodel`` YAML, the code file (and,
since the OOD guard, the code it imports, under ``code/``), and ``artifacts/`` with the ``.keras`` file, a small
JSON configuration and, for models registered with a guard, ``ood_guard.json``. Our loaders (predict, serve, generate)
never execute the code file and never unpickle anything: they read the JSON and load the ``.keras`` file with
``safe_mode`` on. A folder whose MLmodel uses any other flavour (sklearn, cloudpickled python_model, ...) is
refused.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mritune.trainables.errors import MissingInputError, UserInputError

KERAS_ARTIFACT = "keras_model"
CONFIG_ARTIFACT = "mritune_config"
GUARD_ARTIFACT = "ood_guard"  # optional: models registered before the OOD guard have none
CONFIG_FILE = "mritune_config.json"
CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"
# Files that only a pickle-based flavour would write; their presence alone is a reason to refuse.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".cloudpickle", ".joblib", ".dill")
MODEL_KINDS = ("classifier", "generator")


class UnsafeModelError(UserInputError):
    """A model folder that would need pickle (or another unsupported flavour) to load."""


@dataclass(frozen=True)
class ModelFolder:
    """What a loader needs from a downloaded model folder; nothing here is executed or unpickled."""

    path: Path
    kind: str  # "classifier" or "generator"
    keras_path: Path
    config: dict = field(default_factory=dict)  # image_size, class_names / latent_dim
    metadata: dict = field(default_factory=dict)  # the MLmodel's metadata block
    run_id: str | None = None
    guard_path: Path | None = None  # the OOD guard's JSON file; None for a model registered without one

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])


def read_model_folder(path: str | Path) -> ModelFolder:
    """Check and describe a model folder; raise UnsafeModelError for anything pickle-based."""
    import yaml

    root = Path(path)
    if not (root / "MLmodel").is_file():
        raise MissingInputError(f"{root} is not an MLflow model folder (no MLmodel file); run `mritune pull` first")
    mlmodel = yaml.safe_load((root / "MLmodel").read_text()) or {}
    pyfunc = _checked_pyfunc_flavor(mlmodel, root)
    _refuse_pickle_files(root)
    config = read_config(_artifact_path(pyfunc, root, CONFIG_ARTIFACT, ".json"))
    return ModelFolder(
        path=root,
        kind=config["kind"],
        keras_path=_artifact_path(pyfunc, root, KERAS_ARTIFACT, ".keras"),
        config=config,
        metadata=dict(mlmodel.get("metadata") or {}),
        run_id=mlmodel.get("run_id"),
        guard_path=_optional_artifact_path(pyfunc, root, GUARD_ARTIFACT, ".json"),
    )


def _checked_pyfunc_flavor(mlmodel: dict, root: Path) -> dict:
    flavors = mlmodel.get("flavors") or {}
    others = sorted(set(flavors) - {"python_function"})
    if others:
        raise UnsafeModelError(
            f"refusing model at {root}: flavour(s) {', '.join(others)} may load through pickle; "
            "only mritune's models-from-code pyfunc with a .keras file is accepted"
        )
    pyfunc = flavors.get("python_function")
    if not isinstance(pyfunc, dict):
        raise UnsafeModelError(f"refusing model at {root}: its MLmodel has no python_function flavour")
    if pyfunc.get("loader_module") != CODE_MODEL_LOADER or not pyfunc.get("model_code_path"):
        raise UnsafeModelError(
            f"refusing model at {root}: its python_model is pickled (loader {pyfunc.get('loader_module')!r}); "
            "only models logged from code are accepted"
        )
    if pyfunc.get("python_model") or pyfunc.get("data"):
        raise UnsafeModelError(f"refusing model at {root}: its MLmodel points to pickled model data")
    return pyfunc


def _refuse_pickle_files(root: Path) -> None:
    for file in root.rglob("*"):
        if file.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeModelError(f"refusing model at {root}: it contains a pickle file {file.relative_to(root)}")


def _artifact_path(pyfunc: dict, root: Path, name: str, suffix: str) -> Path:
    artifact = (pyfunc.get("artifacts") or {}).get(name) or {}
    relative = artifact.get("path", "")
    path = (root / relative).resolve()
    if not relative or path.suffix != suffix or root.resolve() not in path.parents:
        raise UnsafeModelError(f"refusing model at {root}: artifact {name!r} is not a {suffix} file inside it")
    if not path.is_file():
        raise MissingInputError(f"model at {root} is incomplete: {relative} is missing; pull it again")
    return path


def _optional_artifact_path(pyfunc: dict, root: Path, name: str, suffix: str) -> Path | None:
    if name not in (pyfunc.get("artifacts") or {}):
        return None
    return _artifact_path(pyfunc, root, name, suffix)


def read_config(path: Path) -> dict:
    """The model's configuration (kind, image_size, class_names or latent_dim), as model_logging wrote it."""
    import json

    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnsafeModelError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("kind") not in MODEL_KINDS or "image_size" not in config:
        raise UnsafeModelError(f"{path} does not describe an mritune classifier or generator")
    return config


def load_keras_model(path: str | Path):
    """Load a ``.keras`` file with safe_mode on, after registering mritune's custom layers (when they exist)."""
    import importlib
    import importlib.util

    import keras

    # The trainings register their custom layers in mritune.trainables.layers; import it so that safe_mode
    # deserialisation finds them. Guarded: the module may not exist in every version of the package.
    if importlib.util.find_spec("mritune.trainables.layers") is not None:
        importlib.import_module("mritune.trainables.layers")
    path = Path(path)
    if path.suffix != ".keras":
        raise UnsafeModelError(f"{path} is not a native .keras file; only .keras models are loaded (safe_mode)")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        # safe_mode refuses code carried in the file (a Lambda layer's Python function): the file is hostile or
        # was saved outside mritune; either way it is refused, in one line, before anything runs it.
        if "safe_mode" not in str(exc):
            raise
        reason = str(exc).split(". ", 1)[0]
        raise UnsafeModelError(f"refusing model {path}: Keras safe_mode refused it ({reason})") from None


def check_model_loads(folder: ModelFolder) -> None:
    """Load the folder's ``.keras`` file once with safe_mode, so that a hostile model is refused when it arrives
    (``mritune pull``) and not only when it is first used; raises UnsafeModelError."""
    load_keras_model(folder.keras_path)


def compiled_inference(keras_model, sample_shape: tuple[int, ...]):
    """A fast inference callable (float32 batch → numpy, or a list of numpy arrays for several outputs).

    Calling a Keras model eagerly runs layer by layer in Python: for MobileNetV2 at 128 px that measured ~300×
    slower than a traced graph for one image and ~3× for a batch of 64. Under the TensorFlow backend the call is
    traced once with a free batch dimension; other backends use Keras' own compiled ``predict_on_batch``.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda batch: keras.tree.map_structure(np.asarray, keras_model.predict_on_batch(batch))
    import tensorflow as tf

    spec = tf.TensorSpec((None, *sample_shape), tf.float32)
    # A partial, not a lambda: TensorFlow counts traces per code object, so one lambda traced once for each of
    # several models (a process that scores re-runs, the gate, the guard) read as "retracing" and warned.
    traced = tf.function(functools.partial(_call_in_inference_mode, keras_model), input_signature=[spec])
    return lambda batch: keras.tree.map_structure(np.asarray, traced(tf.convert_to_tensor(batch, dtype=tf.float32)))


def _call_in_inference_mode(keras_model, batch):
    return keras_model(batch, training=False)
