"""Logging the trained Keras models as MLflow pyfuncs, "models from code": no cloudpickled object is written.

The platform calls these inside the active MLflow run of the best trial and registers the returned
``model_uri`` itself. Each call writes a three-line script that builds the PythonModel from this package and
calls ``mlflow.models.set_model``; MLflow stores that script, the ``.keras`` file (artifact ``keras_model``), the
configuration the loaders read (artifact ``mritune_config``, a small JSON file) and, when given, the OOD guard
(artifact ``ood_guard``, JSON).

The model carries the code it runs: the modules in ``PYFUNC_MODULES`` (the pyfuncs and what they import, nothing
else of mritune) are copied, at their package paths, into the model's ``code/`` folder (MLflow's ``code_paths``),
and its requirements name only packages any index has (MLflow, TensorFlow, Keras, OpenCV, pandas, NumPy). So
``mlflow.pyfunc.load_model``, ``mlflow models serve`` and ``mlflow models build-docker`` work where mritune is not
installed. Where it is, MLflow puts ``code/`` first on ``sys.path`` when it loads the model, so the model runs the
code it was logged with (the copies carry no ``__init__.py``: ``mritune`` stays a namespace package and the rest
of an installed mritune stays importable).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path

from mritune.deploy.model_files import CONFIG_ARTIFACT, CONFIG_FILE, GUARD_ARTIFACT, KERAS_ARTIFACT
from mritune.deploy.ood_guard import IN_DISTRIBUTION, OOD_REASON, OOD_SCORE
from mritune.trainables.errors import MissingInputError, UserInputError

# What the pyfuncs import of mritune, closed under imports (tests/deploy/test_model_code.py checks it): these
# travel inside every logged model. Each may import only the others and third-party packages in REQUIREMENTS.
PYFUNC_MODULES = (
    "mritune.deploy.pyfunc_classifier",
    "mritune.deploy.pyfunc_generator",
    "mritune.deploy.model_files",
    "mritune.deploy.ood_guard",
    "mritune.trainables.data.preprocess",
    "mritune.trainables.errors",
    "mritune.trainables.layers",
)
# The model's pip requirements, pinned to the versions installed here (no mritune: the model carries its code).
REQUIREMENTS = ("mlflow", "tensorflow", "keras", "opencv-python-headless", "pandas", "numpy")

_CODE_TEMPLATE = '''"""MLflow models-from-code entry point, written by mritune.deploy.model_logging."""
import mlflow

from mritune.deploy.{module} import {factory}

mlflow.models.set_model({factory}())
'''


def log_classifier_model(*, keras_path: str, image_size: int, class_names: Sequence[str], metadata: dict,
                         guard_path: str | Path | None = None):
    """Log the classifier under the active run (artifact name ``classifier``); returns MLflow's ModelInfo.

    ``guard_path``: the OOD guard's ``ood_guard.json`` (``deploy/ood_fit.py``); None logs a model without one.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from mritune.deploy.pyfunc_classifier import PROB_PREFIX

    _check_keras_file(keras_path)
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "image")]),
        outputs=Schema([ColSpec("string", "class")] + [ColSpec("double", PROB_PREFIX + c) for c in class_names]
                       + _guard_columns()),
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
        guard_path=guard_path,
    )


def log_generator_model(*, keras_path: str, image_size: int, latent_dim: int, metadata: dict,
                        guard_path: str | Path | None = None):
    """Log the DCGAN generator under the active run (artifact name ``generator``); returns MLflow's ModelInfo.

    ``guard_path``: an OOD guard fitted on the real training images, which then scores the generator's samples.
    """
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    _check_keras_file(keras_path)
    signature = ModelSignature(
        inputs=Schema([ColSpec("long", "n"), ColSpec("long", "seed", required=False)]),
        outputs=Schema([ColSpec("long", "row"), ColSpec("string", "image")] + _guard_columns()),
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
        guard_path=guard_path,
    )


def _guard_columns() -> list:
    from mlflow.types import ColSpec

    return [ColSpec("double", OOD_SCORE, required=False), ColSpec("boolean", IN_DISTRIBUTION, required=False),
            ColSpec("string", OOD_REASON, required=False)]


def _log_code_model(*, name, module, factory, keras_path, config, signature, input_example, metadata, guard_path):
    import mlflow

    if mlflow.active_run() is None:
        raise ValueError(f"log the {name} model inside an active MLflow run (mlflow.start_run())")
    artifacts = {KERAS_ARTIFACT: str(keras_path)}
    if guard_path is not None:
        if not Path(guard_path).is_file():
            raise MissingInputError(f"OOD guard file {guard_path} does not exist")
        artifacts[GUARD_ARTIFACT] = str(guard_path)
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
            artifacts={**artifacts, CONFIG_ARTIFACT: str(config_path)},
            code_paths=[str(carried_code(Path(tmp) / "carried"))],
            signature=signature,
            input_example=input_example,
            metadata={**metadata, **config, "ood_guard": guard_path is not None},
            # Given explicitly: inferring them would load the model once more just to list imports.
            pip_requirements=_pip_requirements(),
        )


def carried_code(folder: Path) -> Path:
    """Copy ``PYFUNC_MODULES`` into ``folder/mritune/...`` at their package paths; returns ``folder/mritune``."""
    import importlib.util

    for module in PYFUNC_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"{module} is not importable; reinstall mritune")
        target = folder.joinpath(*module.split(".")).with_suffix(".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spec.origin, target)
    return folder / "mritune"


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
    for package in REQUIREMENTS:
        try:
            requirements.append(f"{package}=={importlib_metadata.version(package)}")
        except importlib_metadata.PackageNotFoundError:
            requirements.append(package)
    return requirements
