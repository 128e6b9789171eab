"""How each task's checkpoint becomes a registered MLflow pyfunc: its OOD guard, then the logged model.

A task names its entry here in the task registry (``Task.model_logging``, a ``"module:attribute"`` reference, as
its training function: trainables may not import deploy). ``platform/registry/registration.py`` calls it after the search; the
spec schema (``config._check_registry``) resolves it while ``registry.enabled`` is on, so a task without one, or
with a reference that names nothing, is refused before any trial trains. The model code (``model_logging``,
``ood_fit``: TensorFlow) is imported inside the functions, so resolving an entry stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def _log_classifier(keras_path: str, state: dict, metadata: dict, guard_path: Path):
    from mritune.deploy.model_logging import log_classifier_model

    return log_classifier_model(keras_path=keras_path, image_size=metadata["image_size"],
                                class_names=metadata["class_names"], metadata=metadata, guard_path=guard_path)


def _log_generator(keras_path: str, state: dict, metadata: dict, guard_path: Path):
    from mritune.deploy.model_logging import log_generator_model

    return log_generator_model(keras_path=keras_path, image_size=metadata["image_size"],
                               latent_dim=int(state["latent_dim"]), metadata=metadata, guard_path=guard_path)


def _fit_classifier_guard(keras_path: str, state: dict, dataset, out_dir: Path):
    from mritune.deploy.ood_fit import fit_classifier_guard_file

    return fit_classifier_guard_file(keras_path, dataset, image_size=image_size(state, dataset), out_dir=out_dir)


def _fit_generator_guard(keras_path: str, state: dict, dataset, out_dir: Path):
    from mritune.deploy.ood_fit import fit_generator_guard_file

    return fit_generator_guard_file(keras_path, dataset, image_size=image_size(state, dataset),
                                    latent_dim=int(state["latent_dim"]), out_dir=out_dir)


def image_size(state: dict, dataset) -> int:
    return int(state.get("image_size", dataset.image_size))


@dataclass(frozen=True)
class PyfuncLogging:
    """How a task's checkpoint becomes a registered pyfunc: its OOD guard, then the logged model."""

    fit_guard: Callable  # (keras_path, state, dataset, out_dir) -> deploy.ood_fit.FittedGuard
    log: Callable  # (keras_path, state, metadata, guard_path) -> MLflow ModelInfo


# The built-in tasks' entries, named by their Task.model_logging (trainables/classifier, trainables/dcgan).
CLASSIFIER = PyfuncLogging(fit_guard=_fit_classifier_guard, log=_log_classifier)
GENERATOR = PyfuncLogging(fit_guard=_fit_generator_guard, log=_log_generator)
