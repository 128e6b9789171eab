"""Logging the trained Keras models as MLflow pyfuncs, "models from code": no cloudpickled object is written.

The platform calls these inside the active MLflow run of the best trial and registers the returned
``model_uri`` itself. Each call writes a three-line script that builds the PythonModel from this package and
calls ``mlflow.models.set_model``; MLflow stores that script, the ``.keras`` file (artifact ``keras_model``) and
the configuration the loaders read (artifact ``mritune_config``, a small JSON file).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path

from mritune.deploy.model_files import CONFIG_ARTIFACT, CONFIG_FILE, KERAS_ARTIFACT
from mritune.trainables.errors import MissingInputError, UserInputError

_CODE_TEMPLATE = '''"""MLflow models-from-code entry point, written by mritune.deploy.model_logging."""
import mlflow

from mritune.deploy.{module} import {factory}

mlflow.models.set_model({factory}())
'''


def log_classifier_model(*, keras_path: str, image_size: int, class_names: Sequence[str], metadata: dict):
    """Log the classifier under the active run (artifact name ``classifier``); returns MLflow's ModelInfo."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from mritune.deploy.pyfunc_classifier import PROB_PREFIX

    _check_keras_file(keras_path)
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "image")]),
        outputs=Schema([ColSpec("string", "class")] + [ColSpec("double", PROB_PREFIX + c) for c in class_names]),
    )
    config = {"kind": "classifier", "image_size": int(image_size), "class_names": list(class_names)}
    return _log_code_model(
        name="classifier",
        module="pyfunc_classifier",
        factory="classifier_python_model",
        keras_path=keras_path,
        config=config,
        signature=signature,
        input_example=_blank_image_example(int(image_size)),
        metadata=metadata,
    )


def log_generator_model(*, keras_path: str, image_size: int, latent_dim: int, metadata: dict):
    """Log the DCGAN generator under the active run (artifact name ``generator``); returns MLflow's ModelInfo."""
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    _check_keras_file(keras_path)
    signature = ModelSignature(
        inputs=Schema([ColSpec("long", "n"), ColSpec("long", "seed", required=False)]),
        outputs=Schema([ColSpec("long", "row"), ColSpec("string", "image")]),
    )
    config = {"kind": "generator", "image_size": int(image_size), "latent_dim": int(latent_dim)}
    return _log_code_model(
        name="generator",
        module="pyfunc_generator",
        factory="generator_python_model",
        keras_path=keras_path,
        config=config,
        signature=signature,
        input_example=pd.DataFrame({"n": [1], "seed": [0]}),
        metadata=metadata,
    )


def _log_code_model(*, name, module, factory, keras_path, config, signature, input_example, metadata):
    import mlflow

    if mlflow.active_run() is None:
        raise ValueError(f"log the {name} model inside an active MLflow run (mlflow.start_run())")
    with tempfile.TemporaryDirectory(prefix="mritune-model-code-") as tmp:
        code_path = Path(tmp) / f"mritune_{name}_model.py"
        code_path.write_text(_CODE_TEMPLATE.format(module=module, factory=factory))
        # The configuration travels as a JSON artifact, not as MLflow's model_config: that one is also logged as
        # run params, where it would collide with the trial's own hyperparameters (image_size).
        config_path = Path(tmp) / CONFIG_FILE
        config_path.write_text(json.dumps(config, indent=2))
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(code_path),
            artifacts={KERAS_ARTIFACT: str(keras_path), CONFIG_ARTIFACT: str(config_path)},
            signature=signature,
            input_example=input_example,
            metadata={**metadata, **config},
            # Given explicitly: inferring them would load the model once more just to list imports.
            pip_requirements=_pip_requirements(),
        )


def _check_keras_file(keras_path: str) -> None:
    path = Path(keras_path)
    if path.suffix != ".keras":
        raise UserInputError(f"{keras_path} is not a native Keras file; save the model as .keras")
    if not path.is_file():
        raise MissingInputError(f"Keras model file {keras_path} does not exist")


def _blank_image_example(image_size: int):
    """A one-row input example: a mid-grey PNG of the model's size, base64-encoded (as a JSON client sends)."""
    import numpy as np
    import pandas as pd

    from mritune.deploy.pyfunc_generator import png_base64

    return pd.DataFrame({"image": [png_base64(np.full((image_size, image_size), 128, dtype=np.uint8))]})


def _pip_requirements() -> list[str]:
    requirements = []
    for package in ("mritune", "mlflow", "tensorflow", "keras", "opencv-python-headless", "pandas", "numpy"):
        try:
            requirements.append(f"{package}=={importlib_metadata.version(package)}")
        except importlib_metadata.PackageNotFoundError:
            requirements.append(package)
    return requirements
