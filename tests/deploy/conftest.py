"""Deploy fixtures: a temporary SQLite MLflow holding a tiny registered classifier and generator.

Built once per session (about 30 s, mostly TensorFlow import and MLflow's SQLite schema creation): models built
with the real `mritune.trainables` builders (the classifier's ``small_cnn`` and the DCGAN generator, at 32 px),
each with an OOD guard fitted on ``tiny_dataset`` (``deploy/ood_fit.py``), logged with `log_classifier_model` /
`log_generator_model` exactly as the platform does, registered and aliased:

- ``mritune-classifier``: version 1 (alias ``champion``), version 2 (alias ``challenger``), same model files;
- ``mritune-dcgan``: version 1 (alias ``champion``);
- ``mritune-legacy`` (fixture ``legacy_model``): the same classifier logged as mritune logged models before the OOD
  guard (no guard, no carried code, ``mritune==`` in its requirements), version 1 (alias ``champion``).
"""

from __future__ import annotations

import contextlib

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import mlflow_stores

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGE_SIZE = 32
LATENT_DIM = 8
FINGERPRINT = "fp-test-0001"
CLASSIFIER = "mritune-classifier"
GENERATOR = "mritune-dcgan"
LEGACY = "mritune-legacy"


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    root: Path
    classifier_keras: Path
    generator_keras: Path
    classifier_run_id: str
    classifier_guard: Path
    generator_guard: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env() -> dict:
    """Environment for `mritune` subprocesses: quiet TensorFlow on few threads, no inherited tracking URI."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1",
               OMP_NUM_THREADS="1", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    return env


def invoke_mritune(*args: str):
    """A `mritune` command run in this test process (typer's CliRunner: the command's function, its options and its
    echoed stdout/stderr, without a new interpreter importing TensorFlow again); its exceptions propagate.

    For tests about what a command does; the tests about the process itself (a server, an exit code from
    ``main()``'s error handling, what its logging prints) run the console script."""
    from typer.testing import CliRunner

    from mritune.platform.cli.app import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def build_tiny_classifier(path: Path) -> Path:
    import keras

    from mritune.trainables.data.classes import CLASS_NAMES
    from mritune.trainables.classifier.config import ClassifierConfig
    from mritune.trainables.classifier.model import build_classifier

    keras.utils.set_random_seed(0)
    config = ClassifierConfig.from_dict({"backbone": "small_cnn", "image_size": IMAGE_SIZE, "dense_units": 8})
    build_classifier(config, num_classes=len(CLASS_NAMES)).save(path)
    return path


def build_tiny_generator(path: Path) -> Path:
    """The real DCGAN generator builder, tiny: noise (LATENT_DIM,) → (S, S, 1) in [-1, 1] via tanh."""
    import keras

    from mritune.trainables.dcgan.config import DCGANConfig
    from mritune.trainables.dcgan.model import build_generator

    keras.utils.set_random_seed(0)
    config = DCGANConfig.from_dict({"image_size": IMAGE_SIZE, "latent_dim": LATENT_DIM, "base_filters": 2})
    build_generator(config).save(path)
    return path


@contextlib.contextmanager
def sqlite_store(root: Path, experiment_name: str):
    """A SQLite tracking store and registry in ``root`` with one experiment (artifacts under ``root``), set as the
    process's tracking URI for the block; yields ``(uri, client, experiment_id)``."""
    import mlflow
    from mlflow import MlflowClient

    uri = mlflow_stores.sqlite_store(root / "mlruns.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        mlflow.set_tracking_uri(uri)
        try:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            yield uri, client, client.create_experiment(experiment_name, artifact_location=str(root / "artifacts"))
        finally:
            mlflow.set_tracking_uri(None)


def fit_guards(classifier_keras: Path, data, folder: Path) -> tuple[Path, Path]:
    """The classifier's and the generator's OOD guards on ``data`` (32 px), as registration fits them."""
    from mritune.deploy.model_files import load_keras_model
    from mritune.deploy.ood_fit import fit_classifier_guard, fit_guard

    splits = {"train_images": data.x_train, "train_labels": data.y_train, "val_images": data.x_val}
    classifier = fit_classifier_guard(load_keras_model(classifier_keras), **splits)
    (folder / "classifier").mkdir()
    (folder / "generator").mkdir()
    return classifier.save(folder / "classifier" / "ood_guard.json"), fit_guard(**splits).save(
        folder / "generator" / "ood_guard.json")


@pytest.fixture(scope="session")
def registry(tmp_path_factory, tiny_dataset) -> Registry:
    import mlflow

    from mritune.deploy.model_logging import log_classifier_model, log_generator_model
    from mritune.trainables.data.classes import CLASS_NAMES

    _few_tf_threads()
    root = tmp_path_factory.mktemp("deploy-registry")
    classifier_keras = build_tiny_classifier(root / "model.keras")
    generator_keras = build_tiny_generator(root / "generator.keras")
    classifier_guard, generator_guard = fit_guards(classifier_keras, tiny_dataset, root)
    metadata = {"dataset_fingerprint": FINGERPRINT, "mritune_version": "test"}
    with sqlite_store(root, "deploy-tests") as (uri, client, experiment):
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_metric("test_macro_f1", 0.75)
            classifier = log_classifier_model(
                keras_path=str(classifier_keras), image_size=IMAGE_SIZE, class_names=CLASS_NAMES,
                metadata={**metadata, "class_names": list(CLASS_NAMES), "image_size": IMAGE_SIZE},
                guard_path=classifier_guard,
            )
            generator = log_generator_model(
                keras_path=str(generator_keras), image_size=IMAGE_SIZE, latent_dim=LATENT_DIM, metadata=metadata,
                guard_path=generator_guard,
            )
        tags = {"dataset_fingerprint": FINGERPRINT, "search": "deploy-tests", "run_id": run.info.run_id}
        for name, info, aliases in (
            (CLASSIFIER, classifier, ("champion", "challenger")),
            (GENERATOR, generator, ("champion",)),
        ):
            for alias in aliases:
                version = mlflow.register_model(info.model_uri, name, tags=tags).version
                client.set_registered_model_alias(name, alias, version)
    return Registry(
        tracking_uri=uri, root=root, classifier_keras=classifier_keras, generator_keras=generator_keras,
        classifier_run_id=run.info.run_id, classifier_guard=classifier_guard, generator_guard=generator_guard,
    )


# The models-from-code script and requirements of models logged before the OOD guard (mritune at 6da005d).
_LEGACY_CODE = """import mlflow

from mritune.deploy.pyfunc_classifier import classifier_python_model

mlflow.models.set_model(classifier_python_model())
"""


@pytest.fixture(scope="session")
def legacy_model(registry) -> str:
    """``mritune-legacy@champion``: the registry's classifier logged the way mritune logged models before the OOD
    guard (the code script imports the installed mritune; artifacts: the .keras file and the config only)."""
    import json

    import mlflow

    from mritune.trainables.data.classes import CLASS_NAMES

    folder = registry.root / "legacy"
    folder.mkdir()
    (folder / "mritune_classifier_model.py").write_text(_LEGACY_CODE)
    config = {"kind": "classifier", "image_size": IMAGE_SIZE, "class_names": list(CLASS_NAMES)}
    (folder / "mritune_config.json").write_text(json.dumps(config))
    with sqlite_store(registry.root, "legacy") as (uri, client, experiment):
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="classifier", python_model=str(folder / "mritune_classifier_model.py"),
                artifacts={"keras_model": str(registry.classifier_keras),
                           "mritune_config": str(folder / "mritune_config.json")},
                metadata={**config, "dataset_fingerprint": FINGERPRINT}, pip_requirements=["mritune==0.1.0", "mlflow"],
            )
        version = mlflow.register_model(info.model_uri, LEGACY).version
        client.set_registered_model_alias(LEGACY, "champion", version)
    return f"models:/{LEGACY}@champion"


@pytest.fixture(scope="session")
def pulled_classifier(registry, tmp_path_factory) -> Path:
    from mritune.deploy.registry_client import pull

    out = tmp_path_factory.mktemp("pulled") / "classifier"
    pull(f"{CLASSIFIER}@champion", out_dir=out, tracking_uri=registry.tracking_uri)
    return out


@pytest.fixture(scope="session")
def photo_file() -> Path:
    """A colour photograph that is not a brain MRI: scikit-image's bundled astronaut.png (no download)."""
    import skimage

    return Path(skimage.__file__).parent / "data" / "astronaut.png"


def _few_tf_threads() -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow was already initialised by an earlier test in this session; its setting stays.
