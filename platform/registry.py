"""Register the best trial's best checkpoint and apply the promotion gate.

The trial and the epoch are the first row of the search's ranking (``ranking.rank_trials``: best validation score
among the checkpoints Ray kept, errored trials never), so the registered model is exactly the one the results
table ranks first, ASHA-stopped trials included. That checkpoint is evaluated once on the untouched test split
(``trainables.evaluation``); its test metrics and plots go into the trial's run and onto the version's tags,
with the epoch and the trial. The model is logged into the trial's run as a pyfunc (Keras native format inside),
with an out-of-distribution guard fitted on the checkpoint and the training split (``deploy/ood_fit.py``); the share
of test images it flags (and, for the DCGAN, of the generator's own samples) is logged with the test metrics.
Promotion gate (``platform/promotion.py``, safe for concurrent registrations): alias ``champion`` moves to the new version only if its gate metric on the test split
(classifier: test_macro_f1; DCGAN: test_swd) beats the current champion's on the same dataset fingerprint; when
there is no champion it becomes champion; otherwise — worse, or a champion trained on other data, which cannot be
compared — the new version gets ``challenger``.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mritune.platform.config import SearchSpec
from mritune.platform.promotion import PENDING, PROMOTION_TAG, promote
from mritune.platform.ranking import TrialScore
from mritune.platform.tracking import is_finite_number
from mritune.platform.tracking_runs import trial_run_id
from mritune.trainables.tasks import get_task


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    model_name: str
    version: str
    alias: str  # the alias this version received: champion or challenger
    trial_id: str
    epoch: int  # the trial's epoch whose checkpoint was registered (its best by the search metric)
    run_id: str
    metrics: dict  # that epoch's reported metrics plus the checkpoint's test metrics (the version's tags)
    gate_metric: str
    gate_value: float
    previous_champion: str | None  # version number of the champion before this registration
    reason: str


def register_best(*, spec: SearchSpec, ranked: list[TrialScore], tracking_uri: str, experiment_id: str,
                  parent_run_id: str, dataset) -> Registration | None:
    """Register the best registrable trial of ``ranked`` (best first); None when no trial has a usable score."""
    import tempfile

    from mritune.trainables.evaluation import evaluate_checkpoint

    task = get_task(spec.task)
    gate_metric, gate_mode = task.gate_metric, task.gate_mode
    best = next((score for score in ranked if score.registrable), None)
    if best is None:
        logger.warning("no trial of search %s has a usable %s: nothing registered", spec.name, spec.metric)
        return None
    run_id = trial_run_id(tracking_uri, experiment_id, parent_run_id, best.trial_id)
    if run_id is None:
        logger.warning("trial %s has no MLflow run under search run %s: nothing registered", best.trial_id,
                       parent_run_id)
        return None
    reported = {k: float(v) for k, v in best.metrics.items()
                if is_finite_number(v) and not k.startswith(("time_", "timestamp", "test_"))}
    with best.checkpoint.as_directory() as folder, tempfile.TemporaryDirectory() as out:
        evaluation = evaluate_checkpoint(folder, dataset, out_dir=out)
        guard = _fit_guard(spec, Path(folder), dataset, Path(out) / "guard")
        evaluation = replace(evaluation, metrics={**evaluation.metrics, **guard.metrics})
        metrics = {**reported, **evaluation.metrics}
        _log_test_evaluation(run_id, evaluation, tracking_uri, step=int(best.epoch))
        model_uri = _log_model(spec, Path(folder), run_id, dataset, metrics, tracking_uri, guard_path=guard.path)
    return _register(
        spec=spec, model_uri=model_uri, run_id=run_id, trial=best, parent_run_id=parent_run_id,
        fingerprint=dataset.fingerprint, metrics=metrics, gate=(gate_metric, gate_mode), tracking_uri=tracking_uri,
    )


def _log_test_evaluation(run_id: str, evaluation, tracking_uri: str, *, step: int) -> None:
    """The registered checkpoint's test metrics and plots, in the trial's run at that checkpoint's epoch."""
    import time

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, step) for key, value in evaluation.metrics.items()
               if is_finite_number(value)]
    client.log_batch(run_id, metrics=metrics)
    for path in evaluation.artifacts.values():
        client.log_artifact(run_id, path, artifact_path="registered_checkpoint")


def _fit_guard(spec: SearchSpec, folder: Path, dataset, out_dir: Path):
    """The checkpoint's OOD guard, fitted on the search's training split (deploy/ood_fit.py)."""
    state = json.loads((folder / "state.json").read_text())
    keras_path = str(folder / get_task(spec.task).model_file)
    return _MODEL_LOGGERS[spec.task].fit_guard(keras_path, state, dataset, out_dir)


def _log_model(spec: SearchSpec, folder: Path, run_id: str, dataset, metrics: dict, tracking_uri: str, *,
               guard_path: Path) -> str:
    """Log the checkpoint's model into the trial's run, leaving the run's status as it was."""
    import mlflow

    state = json.loads((folder / "state.json").read_text())
    metadata = {
        "dataset_fingerprint": dataset.fingerprint,
        "class_names": list(dataset.class_names),
        "image_size": _image_size(state, dataset),
        "search": spec.name,
        "epoch": int(state["epoch"]),
        "metrics": metrics,
        "mritune_version": importlib.metadata.version("mritune"),
    }
    keras_path = str(folder / get_task(spec.task).model_file)
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    status = client.get_run(run_id).info.status
    with mlflow.start_run(run_id=run_id):
        info = _MODEL_LOGGERS[spec.task].log(keras_path, state, metadata, guard_path)
    client.set_terminated(run_id, status=status)
    return info.model_uri


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

    return fit_classifier_guard_file(keras_path, dataset, image_size=_image_size(state, dataset), out_dir=out_dir)


def _fit_generator_guard(keras_path: str, state: dict, dataset, out_dir: Path):
    from mritune.deploy.ood_fit import fit_generator_guard_file

    return fit_generator_guard_file(keras_path, dataset, image_size=_image_size(state, dataset),
                                    latent_dim=int(state["latent_dim"]), out_dir=out_dir)


def _image_size(state: dict, dataset) -> int:
    return int(state.get("image_size", dataset.image_size))


@dataclass(frozen=True)
class _PyfuncLogging:
    """How a task's checkpoint becomes a registered pyfunc: its OOD guard, then the logged model."""

    fit_guard: Callable  # (keras_path, state, dataset, out_dir) -> deploy.ood_fit.FittedGuard
    log: Callable  # (keras_path, state, metadata, guard_path) -> MLflow ModelInfo


# Task name (trainables/tasks.py) -> how its model is logged as an MLflow pyfunc. Here, not in the task registry,
# because the pyfunc wrappers live in deploy/ and trainables must not import deploy (docs/architecture.md).
_MODEL_LOGGERS = {
    "classifier": _PyfuncLogging(fit_guard=_fit_classifier_guard, log=_log_classifier),
    "dcgan": _PyfuncLogging(fit_guard=_fit_generator_guard, log=_log_generator),
}


def _register(*, spec, model_uri, run_id, trial: TrialScore, parent_run_id, fingerprint, metrics, gate, tracking_uri):
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri)
    gate_metric, gate_mode = gate
    tags = {
        "search": spec.name,
        "search_run_id": parent_run_id,
        "run_id": run_id,
        "trial_id": trial.trial_id,
        "epoch": str(trial.epoch),
        "search_metric": spec.metric,
        "dataset_fingerprint": fingerprint,
        "gate_metric": gate_metric,
        # Only the two scores that chose and gate it, exact (the gate reads them back); every metric stays on the
        # trial's run and in the logged model's metadata, where MLflow shows them.
        **{f"metric.{k}": repr(float(metrics[k])) for k in dict.fromkeys([spec.metric, gate_metric]) if k in metrics},
    }
    # Created pending: concurrent registrations into this model run the gate one at a time (platform/promotion.py).
    version = mlflow.register_model(model_uri, spec.model_name, tags={**tags, PROMOTION_TAG: PENDING}).version
    alias, previous, reason = promote(
        client, spec.model_name, str(version), fingerprint=fingerprint, value=metrics[gate_metric],
        metric=gate_metric, mode=gate_mode, champion_alias=spec.registry.alias,
    )
    client.update_model_version(spec.model_name, version, description=version_description(
        spec=spec, trial=trial, alias=alias, reason=reason, gate_metric=gate_metric, metrics=metrics))
    return Registration(
        model_name=spec.model_name, version=str(version), alias=alias, trial_id=trial.trial_id, epoch=int(trial.epoch),
        run_id=run_id, metrics=metrics,
        gate_metric=gate_metric, gate_value=metrics[gate_metric], previous_champion=previous, reason=reason,
    )


def version_description(*, spec, trial: TrialScore, alias: str, reason: str, gate_metric: str, metrics: dict) -> str:
    """What the registry's version page says: where the model comes from and why it got its alias."""
    chosen = f"{spec.metric} {trial.value:.4g}" if trial.value is not None else spec.metric
    return (f"Best checkpoint of search {spec.name} (trial {trial.trial_id}, epoch {trial.epoch}), chosen on "
            f"validation {chosen}. Test {gate_metric} {metrics[gate_metric]:.4g}. @{alias}: {reason}.")

