"""Ray Tune function trainables wrapping `train_classifier` and `train_dcgan`.

Used as ``tune.with_parameters(make_trainable("classifier", observer_factory=f), data=dataset)``: the dataset
travels once through the Ray object store, never re-read from disk per trial. Inside a trial: TensorFlow threads
follow the trial's CPU share, GPU memory its GPU share (capped to a fraction of a device, else grown; mixed
precision on a GPU), the training resumes from ``tune.get_checkpoint()`` at the next epoch, every epoch is reported
with its checkpoint, and the platform's observer (if any) sees on_start / on_epoch / on_end. Every reported
checkpoint also holds its hyperparameter schedule (``schedule.py``): under PBT/PB2, ``tune.get_checkpoint()`` may
be another trial's checkpoint, resumed with a perturbed config.

A trial stopped early by the scheduler (ASHA) is ended by Ray inside ``tune.report`` (``sys.exit(0)``): its
observer then gets on_end with the status ``reporting.final_trial_status`` decides (KILLED before the last epoch)
if Ray lets the thread run that far (best effort; the driver's TrialRunCloser applies the same rule).

Reused actors (``TuneConfig(reuse_actors=True)``): one worker process runs trial after trial, each in a fresh
thread. Ray's ``FunctionTrainable.reset_config`` stops the previous trial's thread (the ``sys.exit`` above) and
waits ``TUNE_FUNCTION_THREAD_TIMEOUT_S`` for it to finish, else it starts a fresh actor. Each trial starts from
``keras.backend.clear_session()`` and builds its own model, optimizer and epoch counter from its own config.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from mritune.trainables.checkpointing import read_state
from mritune.trainables.data.dataset import MRIDataset
from mritune.trainables.reporting import (ERRORED, RETURNED, STOPPED, EpochReport, TrainingResult, TrialObserver,
                                         final_trial_status)
from mritune.trainables.schedule import Segment, extended, read_schedule, write_schedule
from mritune.trainables.tasks import get_task

# Seconds Ray waits for a stopped trial's thread before giving up on reusing its actor: the thread still closes
# its MLflow run (flushing queued logging), which can exceed Ray's 2 s default on a loaded machine.
THREAD_TIMEOUT_S = "20"


def trial_cpus() -> float | None:
    """The CPUs Ray reserved for this trial (None outside a Tune trial's resources)."""
    return _trial_resource("CPU")


def trial_gpus() -> float | None:
    """The share of GPUs Ray reserved for this trial (0.25: a quarter of one device; None: none)."""
    return _trial_resource("GPU")


def _trial_resource(name: str) -> float | None:
    from ray import tune

    resources = tune.get_context().get_trial_resources()
    required = getattr(resources, "required_resources", None) or {}
    return required.get(name)


def make_trainable(
    task: str, *, observer_factory: Callable[[], TrialObserver] | None = None, speedups: bool = True
) -> Callable[[dict, MRIDataset], None]:
    """A Tune function trainable ``(config, data) -> None`` for a registered ``task`` ("classifier", "dcgan").

    ``speedups`` False: the pre-issue-11 inference and optimizer paths (``runtime.SPEEDUPS_ENV``, for benchmarks).
    """
    get_task(task)  # an unknown task fails here, in the driver, not in every trial

    def trainable(config: dict, data: MRIDataset) -> None:
        from ray import tune

        from mritune.trainables.runtime import configure_runtime, free_keras_state

        # Read by Ray in this worker process (reset_config runs here), so setting it here reaches nothing else.
        os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", THREAD_TIMEOUT_S)
        free_keras_state()  # a reused actor: nothing of the previous trial's models or traced functions survives
        configure_runtime(cpus=trial_cpus(), gpus=trial_gpus(), speedups=speedups)
        observer = observer_factory() if observer_factory else None
        if observer:
            observer.on_start(dict(config), tune.get_context().get_trial_id())
        workdir = Path(tempfile.mkdtemp(prefix=f"mritune-{task}-trial-"))
        ending = _TrialEnding(observer=observer, max_epochs=int(config.get("epochs", 0)))
        try:
            try:
                result = _run(task, config, data, workdir, ending)
            except SystemExit:
                # Ray ends a trial stopped by the scheduler (ASHA) with sys.exit(0) inside tune.report. Best
                # effort: Ray may kill the process first (the platform's driver-side callback closes the run then).
                ending.end(STOPPED, None, "stopped early by the scheduler")
                raise
            except Exception as exc:
                ending.end(ERRORED, None, f"{type(exc).__name__}: {exc}")
                raise  # Tune marks the trial ERROR
            ending.end(RETURNED, result, None)  # result's files still exist here
        finally:
            # Tune has copied every reported checkpoint to its storage by now; the local copies can go.
            shutil.rmtree(workdir, ignore_errors=True)

    trainable.__name__ = f"{task}_trainable"
    trainable.__qualname__ = trainable.__name__
    return trainable


class _TrialEnding:
    """The trial's observer and its last reported epoch, so its final status follows ``final_trial_status``."""

    def __init__(self, *, observer: TrialObserver | None, max_epochs: int) -> None:
        self.observer = observer
        self.max_epochs = max_epochs
        self.last_epoch = 0

    def epoch(self, report: EpochReport) -> None:
        self.last_epoch = report.epoch
        if self.observer:
            self.observer.on_epoch(report)

    def end(self, ending: str, result: TrainingResult | None, error: str | None) -> None:
        if self.observer is None:
            return
        status = final_trial_status(ending, last_epoch=self.last_epoch, max_epochs=self.max_epochs)
        self.observer.on_end(status, result, error if status != "FINISHED" else None)


def _run(task: str, config: dict, data: MRIDataset, workdir: Path, ending: _TrialEnding) -> TrainingResult:
    from ray import tune

    resume_from = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        resume_from = checkpoint.to_directory(str(workdir / "resume"))
    segments = _schedule(task, config, resume_from, tune.get_context().get_trial_id())

    def report(epoch_report: EpochReport) -> None:
        ending.epoch(epoch_report)
        checkpoint_dir = epoch_report.checkpoint_dir
        if checkpoint_dir:
            write_schedule(checkpoint_dir, segments)
        saved = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(dict(epoch_report.metrics), checkpoint=saved)

    train = get_task(task).training_function()
    # No test-split evaluation inside a search: trials are ranked on validation, and the registry evaluates the
    # one checkpoint it registers (mritune.trainables.evaluation).
    return train(config, data, report, resume_from=resume_from, workdir=str(workdir / "run"), evaluate_test=False)


def _schedule(task: str, config: dict, resume_from: str | None, trial_id: str) -> list[Segment]:
    """The hyperparameter schedule of the checkpoints this process will report (``schedule.extended``)."""
    if resume_from is None:
        return extended([], resumed_epoch=0, trial_id=trial_id, config=config)
    resumed_epoch = int(read_state(resume_from, task=task)["epoch"])
    return extended(read_schedule(resume_from), resumed_epoch=resumed_epoch, trial_id=trial_id, config=config)


classifier_trainable = make_trainable("classifier")
dcgan_trainable = make_trainable("dcgan")
