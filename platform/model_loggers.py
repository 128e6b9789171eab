"""How each task's checkpoint becomes a registered MLflow pyfunc: its OOD guard, then the logged model.

One entry per task name; ``platform/registry.py`` calls them after the search, and the spec schema
(``config._check_registry``) refuses a spec whose task has no entry while ``registry.enabled`` is on, so such a
search stops before any trial trains. deploy/ is imported inside the functions (it imports TensorFlow).
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


# Task name (trainables/tasks.py) -> how its model is logged as an MLflow pyfunc. Here, not in the task registry,
# because the pyfunc wrappers live in deploy/ and trainables must not import deploy (docs/architecture.md).
# The spec schema (config._check_registry) refuses a task missing here while the registry is on.
MODEL_LOGGERS = {
    "classifier": PyfuncLogging(fit_guard=_fit_classifier_guard, log=_log_classifier),
    "dcgan": PyfuncLogging(fit_guard=_fit_generator_guard, log=_log_generator),
}
