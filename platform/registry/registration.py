"""Register the best trial's best checkpoint and apply the promotion gate.

The trial and the epoch are the first row of the search's ranking (``ranking.rank_trials``: best validation score
among the checkpoints Ray kept, errored trials never), so the registered model is exactly the one the results
table ranks first, ASHA-stopped trials included. That checkpoint is evaluated once on the untouched test split
(``trainables.evaluation``); its test metrics and plots go into the trial's run and onto the version's tags,
with the epoch and the trial. The model is logged into the trial's run as a pyfunc (Keras native format inside),
with an out-of-distribution guard fitted on the checkpoint and the training split (``deploy/ood_fit.py``); the share
of test images it flags (and, for the DCGAN, of the generator's own samples) is logged with the test metrics.
Promotion gate (``platform/registry/promotion.py``, safe for concurrent registrations): alias ``champion`` moves to the new version only if its gate metric on the test split
(classifier: test_macro_f1; DCGAN: test_fd) beats the current champion's on the same dataset fingerprint; when
there is no champion it becomes champion; otherwise — worse, or a champion trained on other data, which cannot be
compared — the new version gets ``challenger``.

With re-runs (``platform/registry/rerun.py``, spec ``promotion``), what is registered is not the best trial's checkpoint
but the chosen configuration's re-run whose validation score is closest to its re-runs' mean (the choice is made
on validation, in ``rerun_summary``); the re-run was evaluated on the test split in its own task. Its model is
logged into the run of the trial whose configuration it is (tagged ``mritune.registered_rerun``), and the version
carries the interval of its re-runs' test scores (``rerun.mean``, ``rerun.ci95_low``, ``rerun.ci95_high``),
the seeds and k; the gate then compares intervals (``promotion.compare``).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from mritune.deploy.task_logging import image_size
from mritune.platform.spec.config import SearchSpec
from mritune.platform.tracking import tags
from mritune.platform.tracking.display import floor_text
from mritune.platform.registry.promotion import PENDING, Interval, promote
from mritune.platform.tracking.ranking import TrialScore
from mritune.platform.registry.rerun_summary import RerunSummary, decision_record
from mritune.platform.tracking.trial_runs import is_finite_number
from mritune.platform.tracking.search_run import trial_run_id
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
    interval: Interval | None = None  # the gate metric's mean and 95% interval over the re-runs (None: no re-runs)
    decision: dict | None = None  # the gate's decision with both sides' numbers (rerun_summary.decision_record)
    gate_floor: float | None = None  # the gate metric's real-vs-real floor (Task.floor_metrics), None: it has none

    @property
    def gate_text(self) -> str:
        """``test_fd 3.42, floor 0.0383``: the gate metric's value beside its floor, as the views show it."""
        return f"{self.gate_metric} {self.gate_value:.4f}{floor_text(self.gate_floor)}"


def register_best(*, spec: SearchSpec, ranked: list[TrialScore], tracking_uri: str, experiment_id: str,
                  parent_run_id: str, dataset, reruns: RerunSummary | None = None) -> Registration | None:
    """Register the best registrable trial of ``ranked`` (best first), or with ``reruns`` the re-run they chose;
    None when no trial has a usable score (or every re-run configuration had a failed re-run)."""
    import tempfile

    from mritune.trainables.evaluation import evaluate_checkpoint

    if reruns is not None:
        return _register_rerun(spec=spec, reruns=reruns, tracking_uri=tracking_uri, experiment_id=experiment_id,
                               parent_run_id=parent_run_id, dataset=dataset)
    task = get_task(spec.task)
    gate_metric, gate_mode = task.gate_metric, task.gate_mode
    best = next((score for score in ranked if score.registrable), None)
    if best is None:
        logger.warning("no trial of search %s has a usable %s: nothing registered", spec.name, spec.metric)
        return None
    run_id = _registered_trial_run(tracking_uri, experiment_id, parent_run_id, best.trial_id)
    if run_id is None:
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


def _register_rerun(*, spec: SearchSpec, reruns: RerunSummary, tracking_uri: str, experiment_id: str,
                    parent_run_id: str, dataset) -> Registration | None:
    """Register the re-run ``reruns`` chose: its stored checkpoint, its own test metrics, its interval."""
    import tempfile

    from mritune.platform.infra import storage
    from mritune.platform.registry.rerun import EVALUATION_FOLDER

    config, rerun = reruns.chosen_config, reruns.registered
    if config is None or rerun is None:
        logger.warning("every configuration search %s re-ran has a failed re-run: nothing registered", spec.name)
        return None
    run_id = _registered_trial_run(tracking_uri, experiment_id, parent_run_id, config.trial_id)
    if run_id is None:
        return None
    task = get_task(spec.task)
    with tempfile.TemporaryDirectory() as scratch:
        folder = storage.download_folder(storage.parse_location(rerun.checkpoint), Path(scratch) / "checkpoint")
        _log_rerun_evaluation(run_id, folder / EVALUATION_FOLDER, rerun, tracking_uri)
        guard = _fit_guard(spec, folder, dataset, Path(scratch) / "guard")
        metrics = {**rerun.metrics, **guard.metrics}
        model_uri = _log_model(spec, folder, run_id, dataset, metrics, tracking_uri, guard_path=guard.path,
                               extra={"rerun": {"seed": rerun.seed, "seeds": list(reruns.seeds),
                                                "top_k": reruns.top_k, "interval": reruns.interval.tags()
                                                if reruns.interval else None}})
    trial = TrialScore(trial_id=config.trial_id, status="OK", epochs=config.epoch, value=rerun.val,
                       epoch=rerun.epoch)
    return _register(
        spec=spec, model_uri=model_uri, run_id=run_id, trial=trial, parent_run_id=parent_run_id,
        fingerprint=dataset.fingerprint, metrics=metrics, gate=(task.gate_metric, task.gate_mode),
        tracking_uri=tracking_uri, reruns=reruns,
    )


def _registered_trial_run(tracking_uri: str, experiment_id: str, parent_run_id: str, trial_id: str) -> str | None:
    """The MLflow run of the trial to register, or None (logged: nothing is registered) when it has none."""
    run_id = trial_run_id(tracking_uri, experiment_id, parent_run_id, trial_id)
    if run_id is None:
        logger.warning("trial %s has no MLflow run under search run %s: nothing registered", trial_id,
                       parent_run_id)
    return run_id


def _log_rerun_evaluation(run_id: str, folder: Path, rerun, tracking_uri: str) -> None:
    """The registered re-run's test plots in its configuration's trial run, and which re-run it was."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    client.set_tag(run_id, tags.REGISTERED_RERUN_TAG, f"seed {rerun.seed}, {rerun.epoch} epochs")
    if folder.is_dir():
        client.log_artifacts(run_id, str(folder), artifact_path=f"registered_rerun_seed{rerun.seed}")


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
    return get_task(spec.task).pyfunc_logging().fit_guard(keras_path, state, dataset, out_dir)


def _log_model(spec: SearchSpec, folder: Path, run_id: str, dataset, metrics: dict, tracking_uri: str, *,
               guard_path: Path, extra: dict | None = None) -> str:
    """Log the checkpoint's model into the trial's run, leaving the run's status as it was."""
    import mlflow

    state = json.loads((folder / "state.json").read_text())
    metadata = {
        "dataset_fingerprint": dataset.fingerprint,
        "class_names": list(dataset.class_names),
        "image_size": image_size(state, dataset),
        "search": spec.name,
        "epoch": int(state["epoch"]),
        "metrics": metrics,
        "mritune_version": importlib.metadata.version("mritune"),
        **(extra or {}),
    }
    keras_path = str(folder / get_task(spec.task).model_file)
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    status = client.get_run(run_id).info.status
    with mlflow.start_run(run_id=run_id):
        info = get_task(spec.task).pyfunc_logging().log(keras_path, state, metadata, guard_path)
    client.set_terminated(run_id, status=status)
    return info.model_uri


def _register(*, spec, model_uri, run_id, trial: TrialScore, parent_run_id, fingerprint, metrics, gate, tracking_uri,
              reruns: RerunSummary | None = None):
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri)
    gate_metric, gate_mode = gate
    interval = reruns.interval if reruns is not None else None
    scores = list(dict.fromkeys([spec.metric, gate_metric]))
    floors = [_floor_metric(spec, metric) for metric in scores]
    version_tags = {
        tags.VERSION_SEARCH_TAG: spec.name,
        tags.VERSION_SEARCH_RUN_ID_TAG: parent_run_id,
        tags.VERSION_RUN_ID_TAG: run_id,
        tags.VERSION_TRIAL_ID_TAG: trial.trial_id,
        tags.VERSION_EPOCH_TAG: str(trial.epoch),
        tags.VERSION_SEARCH_METRIC_TAG: spec.metric,
        tags.DATASET_FINGERPRINT_TAG: fingerprint,
        tags.GATE_METRIC_TAG: gate_metric,
        # Only the two scores that chose and gate it, exact (the gate reads them back), and their real-vs-real floors
        # (the report shows them beside the scores); every metric stays on the trial's run and in the logged model's
        # metadata, where MLflow shows them.
        **{tags.metric_tag(k): repr(float(metrics[k])) for k in [*scores, *filter(None, floors)] if k in metrics},
        **(_rerun_tags(reruns) if reruns is not None else {}),
    }
    # Created pending: concurrent registrations into this model run the gate one at a time (platform/registry/promotion.py).
    version = mlflow.register_model(model_uri, spec.model_name,
                                    tags={**version_tags, tags.PROMOTION_TAG: PENDING}).version
    alias, previous, reason = promote(
        client, spec.model_name, str(version), fingerprint=fingerprint, value=metrics[gate_metric],
        metric=gate_metric, mode=gate_mode, champion_alias=spec.registry.alias, interval=interval,
        rule=spec.promotion.rule,
    )
    decision = decision_record(version=str(version), alias=alias, reason=reason, rule=spec.promotion.rule,
                               value=float(metrics[gate_metric]), interval=interval, champion_version=previous,
                               champion_tags=_version_tags(client, spec.model_name, previous), gate_metric=gate_metric)
    logger.info("%s v%s @%s: %s", spec.model_name, version, alias, reason)
    client.update_model_version(spec.model_name, version, description=version_description(
        spec=spec, trial=trial, alias=alias, reason=reason, gate_metric=gate_metric, metrics=metrics, reruns=reruns))
    return Registration(
        model_name=spec.model_name, version=str(version), alias=alias, trial_id=trial.trial_id, epoch=int(trial.epoch),
        run_id=run_id, metrics=metrics,
        gate_metric=gate_metric, gate_value=metrics[gate_metric], previous_champion=previous, reason=reason,
        interval=interval, decision=decision, gate_floor=_floor_value(spec, gate_metric, metrics),
    )


def _floor_metric(spec: SearchSpec, metric: str) -> str | None:
    return get_task(spec.task).floor_of(metric)


def _floor_value(spec: SearchSpec, metric: str, metrics: dict) -> float | None:
    """``metric``'s real-vs-real floor among ``metrics`` (``Task.floor_metrics``), or None."""
    floor = _floor_metric(spec, metric)
    value = metrics.get(floor) if floor else None
    return float(value) if is_finite_number(value) else None


def _rerun_tags(reruns: RerunSummary) -> dict[str, str]:
    """The interval, the seeds and k on the version: the gate reads the interval back, a person the rest."""
    rerun = {tags.RERUN_SEEDS_TAG: ",".join(map(str, reruns.seeds)), tags.RERUN_TOP_K_TAG: str(reruns.top_k),
             tags.RERUN_SEED_TAG: str(reruns.registered_seed)}
    return {**rerun, **(reruns.interval.tags() if reruns.interval else {})}


def _version_tags(client, model_name: str, version: str | None) -> dict | None:
    """The previous champion's tags, for the decision record; a registry error here only leaves them out."""
    from mlflow.exceptions import MlflowException

    if version is None:
        return None
    try:
        return dict(client.get_model_version(model_name, version).tags)
    except MlflowException as exc:
        logger.warning("could not read %s v%s's tags for the decision record: %s", model_name, version, exc)
        return None


def version_description(*, spec, trial: TrialScore, alias: str, reason: str, gate_metric: str, metrics: dict,
                        reruns: RerunSummary | None = None) -> str:
    """What the registry's version page says: where the model comes from and why it got its alias."""
    if reruns is not None and reruns.chosen_config is not None:
        return _rerun_description(reruns, alias=alias, reason=reason, metric=spec.metric,
                                  floors=(_floor_value(spec, spec.metric, reruns.registered.metrics),
                                          _floor_value(spec, reruns.gate_metric, reruns.registered.metrics)))
    chosen = (f"{spec.metric} {trial.value:.4g}{floor_text(_floor_value(spec, spec.metric, metrics))}"
              if trial.value is not None else spec.metric)
    return (f"Best checkpoint of search {spec.name} (trial {trial.trial_id}, epoch {trial.epoch}), chosen on "
            f"validation {chosen}. Test {gate_metric} {metrics[gate_metric]:.4g}"
            f"{floor_text(_floor_value(spec, gate_metric, metrics))}. @{alias}: {reason}.")



def _rerun_description(reruns: RerunSummary, *, alias: str, reason: str, metric: str,
                       floors: tuple[float | None, float | None] = (None, None)) -> str:
    """``floors``: the real-vs-real floors of the search metric and the gate metric (None: none)."""
    config, rerun, interval = reruns.chosen_config, reruns.registered, reruns.interval
    seeds = len(reruns.seeds)
    val_floor, test_floor = (floor_text(floor) for floor in floors)
    text = (f"Configuration of trial {config.trial_id} (search rank {config.rank}), trained again from scratch on "
            f"seed {rerun.seed} to epoch {rerun.epoch}: of its {seeds} re-runs, the one whose validation {metric} "
            f"({rerun.val:.4g}{val_floor}) is closest to their mean {config.val_mean:.4g}, the best mean of the top "
            f"{reruns.top_k} configurations (the trial's own score in the search: {config.trial_value:.4g}). ")
    if interval is not None:
        text += (f"Test {reruns.gate_metric}: mean {interval.mean:.4g}, 95% interval [{interval.low:.4g}, "
                 f"{interval.high:.4g}] over {seeds} seeds x {reruns.n_test_images} test images; this re-run's "
                 f"own {rerun.test:.4g}{test_floor}. ")
    else:
        text += f"Test {reruns.gate_metric} {rerun.test:.4g}{test_floor}. "
    return text + f"@{alias}: {reason}."
