"""MLflow tracking: where runs go, the per-trial child run opened inside the trial's process, and the driver-side
callback that closes runs the trial process could not close itself (ASHA stops, killed drivers)."""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mritune.trainables.reporting import EpochReport, TrainingResult
from mritune.platform.tracking.tags import (CLOSED_BY_TAG, END_REASON_TAG, EPOCHS_REDONE_TAG, ERROR_TAG, HOSTNAME_TAG,
                                   NODE_ID_TAG, RESTORED_FROM_TAG, ROLE_TAG, ROLE_TRIAL, SEARCH_TAG, TRIAL_ID_TAG,
                                   TRIAL_STARTED_TAG, WORKER_PID_TAG)

DEFAULT_ARTIFACT_ROOT = "mlartifacts"
RUNS_PAGE = 1000  # runs per search_runs page
HP_METRIC_PREFIX = "hp/"  # + setting: a setting a population-based scheduler perturbs, its value at each epoch

logger = logging.getLogger(__name__)


# MLflow 3's UI opens an experiment on its GenAI overview unless the experiment says it holds model training
# (the tag and value its UI sets under "experiment type: machine learning", mlflow/server/js, MLflow 3.17).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND_TRAINING = "custom_model_development"


def ensure_experiment(name: str, tracking_uri: str) -> str:
    """The experiment's id, creating it (with ./mlartifacts as artifact root for a local store) if needed; marked
    as a training experiment so the MLflow UI opens on its runs (an existing one is marked if it has no kind)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if EXPERIMENT_KIND_TAG not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND_TRAINING)
        return experiment.experiment_id
    artifact_location = None
    if tracking_uri.startswith("sqlite:///"):
        # Beside the database file: ./mlruns.db keeps its artifacts in ./mlartifacts, wherever the command runs.
        database = Path(tracking_uri[len("sqlite:///"):])
        artifact_location = (database.parent / DEFAULT_ARTIFACT_ROOT).resolve().as_uri()
    return client.create_experiment(name, artifact_location=artifact_location,
                                    tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND_TRAINING})


def is_finite_number(value: Any) -> bool:
    """A real, finite number (not a bool, string, NaN or inf): the only values that count as metrics."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def finite_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Numeric, finite values only: MLflow rejects NaN in some stores and strings are not metrics."""
    return {key: float(value) for key, value in metrics.items() if is_finite_number(value)}


def hp_metrics(config: dict[str, Any], keys: tuple[str, ...]) -> dict[str, float]:
    """``hp/<key>``: the numeric perturbed settings' values in ``config`` (NumPy scalars included, as Ray samples
    integers; a text value, e.g. a class weighting, has no metric: the driver's exploit tags hold it,
    tracking/lineage.py)."""
    import numbers

    return {f"{HP_METRIC_PREFIX}{key}": float(config[key]) for key in keys
            if isinstance(config.get(key), numbers.Real) and not isinstance(config.get(key), bool)
            and math.isfinite(config[key])}


def child_runs(client, experiment_id: str, parent_run_id: str) -> list:
    """Every run whose parent is ``parent_run_id``, page by page (no cap on the number of trials)."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
                                  max_results=RUNS_PAGE, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_trial_run(client, experiment_id: str, parent_run_id: str, trial_id: str):
    """The child run of a trial under a search, or None: used to resume a run instead of duplicating it."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.`{TRIAL_ID_TAG}` = '{trial_id}'",
        max_results=1,
    )
    return runs[0] if runs else None


@dataclass(frozen=True)
class MlflowTrialObserverFactory:
    """Picklable factory shipped to trial processes; each call makes the observer for one trial."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    search_name: str
    system_metrics: bool = True
    # MLflow calls on a thread of the observer's own, off the training loop (False: inline, the old behaviour).
    background: bool = True
    # Under pbt/pb2, the settings the scheduler perturbs: logged as hp/<key> every epoch; and the epochs a trial
    # trains again after copying another trial's checkpoint are logged again (new results of another model).
    perturbed: tuple[str, ...] = ()

    def __call__(self) -> "MlflowTrialObserver":
        return MlflowTrialObserver(factory=self)


# Epochs a trial may train ahead of its MLflow logging (a slow or restarting tracking server) before it waits.
MAX_PENDING_CALLS = 32


class _SerialWorker:
    """Runs calls one at a time, in order, on one thread; the first failure is raised to the caller's next call.

    A bounded buffer: with ``max_pending`` calls queued, ``submit`` waits for the oldest, so a tracking server that
    is down slows the trial instead of growing its memory or dropping a metric. Each call retries on its own
    (MLflow's HTTP retry: ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` 7 with backoff factor 2, about 4 minutes); a call
    that still fails fails the trial at its next epoch, loudly.
    """

    def __init__(self, *, max_pending: int = MAX_PENDING_CALLS) -> None:
        from concurrent.futures import ThreadPoolExecutor

        # Not a daemon thread: a worker process that exits normally still finishes the queued MLflow calls.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mritune-mlflow")
        self._pending: list = []
        self._max_pending = max_pending

    def submit(self, function, *args) -> None:
        self.raise_failure()
        if len(self._pending) >= self._max_pending:
            self._pending[0].exception()  # wait for the oldest call; its failure is raised just below
            self.raise_failure()
        self._pending.append(self._executor.submit(function, *args))

    def raise_failure(self) -> None:
        for future in [f for f in self._pending if f.done()]:
            self._pending.remove(future)
            future.result()  # raises the call's exception

    def wait(self) -> None:
        """Wait for every queued call (the worker stays open); raise the first failure."""
        from concurrent.futures import wait

        wait(self._pending)
        self.raise_failure()

    def drain(self) -> None:
        """Wait for every queued call; raise the first failure."""
        self._executor.shutdown(wait=True)
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()


class MlflowTrialObserver:
    """One trial's nested MLflow run, opened inside the trial's own process (artifacts work on remote workers).

    With ``factory.background`` the run is created and every epoch logged on a thread of its own (MLflow's fluent
    API keeps the active run per thread, so all of this trial's calls run on that one thread, in order): the next
    epoch trains meanwhile. ``on_end`` waits until everything is written and the run ended; a tracking failure
    still fails the trial, at its next epoch.
    """

    def __init__(self, *, factory: MlflowTrialObserverFactory) -> None:
        self._factory = factory
        self._worker = _SerialWorker() if factory.background else None
        self._run_id: str | None = None
        # A trial restored from an older checkpoint retrains epochs its run already has; they are not logged twice.
        self._logged_through_epoch = 0
        self._reopened = False  # this process continues a run an earlier process of the same trial opened
        self._pending_open: tuple[dict, str] | None = None
        self._started_at = time.time()
        self._hp: dict[str, float] = {}  # this process's config's perturbed settings, logged every epoch

    def _call(self, function, *args) -> None:
        if self._worker is None:
            function(*args)
        else:
            self._worker.submit(function, *args)

    def on_start(self, config: dict, trial_id: str) -> None:
        # The run opens with the first epoch (or the end), not here: a trial that the driver's last experiment-state
        # snapshot does not know yet (a reused actor starts the next trial at once) leaves no run if the driver dies.
        self._pending_open = (dict(config), trial_id)
        self._started_at = time.time()  # the run opens later, with the first epoch
        self._hp = hp_metrics(config, self._factory.perturbed)

    def on_epoch(self, report: EpochReport) -> None:
        opening = self._pending_open is not None
        self._call(self._log_epoch, report)
        if opening and self._worker is not None:
            # The run must exist before this epoch reaches Tune: a scheduler stop right after it is recorded on
            # the run by the driver (TrialRunCloser), which looks the run up. Once per trial.
            self._worker.wait()

    def on_end(self, status: str, result: TrainingResult | None, error: str | None) -> None:
        """Ends the run with ``status`` as ``reporting.final_trial_status`` decided it; returns once every call
        before it reached MLflow (the trial's files may go after)."""
        if self._worker is None:
            self._close(status, error)
            return
        try:
            self._worker.submit(self._close, status, error)
        finally:
            self._worker.drain()

    def _open_if_needed(self) -> None:
        if self._pending_open is not None:
            config, trial_id = self._pending_open
            self._pending_open = None
            self._open(config, trial_id)

    def _open(self, config: dict, trial_id: str) -> None:
        import mlflow

        mlflow.set_tracking_uri(self._factory.tracking_uri)
        if mlflow.active_run() is not None:
            # A reused actor whose previous trial was stopped by the scheduler: its run is closed by the driver.
            mlflow.end_run(status="KILLED")
        client = mlflow.tracking.MlflowClient(self._factory.tracking_uri)
        existing = find_trial_run(client, self._factory.experiment_id, self._factory.parent_run_id, trial_id)
        run = mlflow.start_run(
            run_id=existing.info.run_id if existing else None,
            experiment_id=None if existing else self._factory.experiment_id,
            run_name=None if existing else trial_id,
            nested=True,
            parent_run_id=None if existing else self._factory.parent_run_id,
            tags=None if existing else self._trial_tags(trial_id),
            log_system_metrics=self._factory.system_metrics,
        )
        self._run_id = run.info.run_id
        if existing is None:
            mlflow.log_params({key: _param_value(value) for key, value in config.items()})
        else:
            history = client.get_metric_history(self._run_id, "epoch")
            self._logged_through_epoch = max((int(m.step) for m in history), default=0)
            self._reopened = True
            if self._factory.perturbed and END_REASON_TAG in existing.data.tags:
                # PBT paused the trial (Ray stopped its process); it goes on, so that ending no longer holds.
                client.delete_tag(self._run_id, END_REASON_TAG)

    def _trial_tags(self, trial_id: str) -> dict[str, str]:
        tags = {TRIAL_ID_TAG: trial_id, SEARCH_TAG: self._factory.search_name, ROLE_TAG: ROLE_TRIAL}
        tags[HOSTNAME_TAG] = socket.gethostname()
        tags[WORKER_PID_TAG] = str(os.getpid())  # trials that share a pid ran in one reused actor
        tags[TRIAL_STARTED_TAG] = f"{self._started_at:.3f}"
        node_id = _ray_node_id()
        if node_id:
            tags[NODE_ID_TAG] = node_id
        return tags

    def _log_epoch(self, report: EpochReport) -> None:
        import mlflow

        self._open_if_needed()
        if self._reopened:
            self._reopened = False
            restored = report.epoch - 1  # the first epoch trained after the restart follows the checkpoint's
            mlflow.set_tags({RESTORED_FROM_TAG: str(restored),
                             EPOCHS_REDONE_TAG: str(max(0, self._logged_through_epoch - restored))})
        if report.epoch <= self._logged_through_epoch and not self._factory.perturbed:
            return

        mlflow.log_metrics({**finite_metrics(report.metrics), **self._hp}, step=report.epoch)
        for key, image in report.images.items():
            mlflow.log_image(image, key=key, step=report.epoch)
        for path in report.artifacts.values():
            mlflow.log_artifact(path, artifact_path="evaluation")

    def _close(self, status: str, error: str | None) -> None:
        import mlflow

        self._open_if_needed()  # a trial that failed before its first epoch still gets its run, FAILED
        if error:
            mlflow.set_tag(ERROR_TAG if status == "FAILED" else END_REASON_TAG, error[:4000])
        mlflow.end_run(status=status)
        self._drop_driver_close()

    def _drop_driver_close(self) -> None:
        """The driver may have closed this run while its trial still ran (``search_run.close_orphaned_runs``, e.g.
        the time budget ran out while this trial was stopping); the trial's own ending, just written, is the true
        one, so the driver's mark goes."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self._factory.tracking_uri)
        if self._run_id and CLOSED_BY_TAG in client.get_run(self._run_id).data.tags:
            client.delete_tag(self._run_id, CLOSED_BY_TAG)


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def _ray_node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except (ImportError, RuntimeError):
        return None
