"""Values a training hands to whoever runs it (the CLI, a Ray Tune trainable, a test).

Trainings know nothing of Ray or MLflow: they call ``report(EpochReport(...))`` once per epoch and return a
``TrainingResult``. The Tune wrappers turn reports into ``ray.tune.report`` calls; the platform adds MLflow
logging through a ``TrialObserver``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from mritune.trainables.errors import MrituneUserError


@dataclass(frozen=True)
class EpochReport:
    epoch: int  # 1-based: the number of epochs completed
    metrics: dict[str, float]
    checkpoint_dir: str | None = None  # a folder holding everything needed to resume after this epoch
    images: dict[str, np.ndarray] = field(default_factory=dict)  # name -> HxW or HxWxC uint8 (e.g. "samples")
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> file path (final epoch: plots, report)


@dataclass(frozen=True)
class TrainingResult:
    metrics: dict[str, float]  # final metrics, including test_* for the classifier
    model_path: str  # the model in Keras native .keras format (classifier; DCGAN generator)
    artifacts: dict[str, str] = field(default_factory=dict)
    epochs_completed: int = 0


Report = Callable[[EpochReport], None]


class TrialObserver(Protocol):
    """Hooks the platform attaches to a trial, called inside the trial's own process."""

    def on_start(self, config: dict, trial_id: str) -> None: ...

    def on_epoch(self, report: EpochReport) -> None: ...

    def on_end(self, status: str, result: TrainingResult | None, error: str | None) -> None:
        """status: FINISHED, FAILED (error set) or KILLED (stopped early by the scheduler)."""


class TrainingDiverged(MrituneUserError, RuntimeError):
    """Raised when losses become NaN/inf or a documented collapse rule fires; the trial ends as failed.

    A user error: the hyperparameters chosen diverge (the message says which to change), not a bug.
    """


# How a trial's training ended, as the trial's process or the driver sees it.
RETURNED = "returned"  # the training function returned: every epoch ran
STOPPED = "stopped"  # the scheduler ended it (ASHA; Ray's sys.exit in tune.report), or the driver cannot tell
ERRORED = "errored"  # it raised


def final_trial_status(ending: str, *, last_epoch: int, max_epochs: int) -> str:
    """The one rule for a trial's final run status: ``FINISHED``, ``KILLED`` or ``FAILED``.

    The trial's process (``tune_trainables``) and the driver's ``TrialRunCloser`` both call this, so the two
    never write different statuses. ASHA also stops every trial that reaches ``max_t`` right after its last
    epoch: a stop at or after ``max_epochs`` is a finished trial; a stop before it is KILLED.

    Args:
        ending: ``RETURNED``, ``STOPPED`` or ``ERRORED``.
        last_epoch: The last epoch the trial reported (0: none).
        max_epochs: The most epochs the trial was to train (the spec's ``epochs``).

    Raises:
        ValueError: ``ending`` is not one of the three.

    Example:
        >>> final_trial_status(STOPPED, last_epoch=2, max_epochs=8)
        'KILLED'
    """
    if ending == ERRORED:
        return "FAILED"
    if ending == RETURNED:
        return "FINISHED"
    if ending == STOPPED:
        return "KILLED" if last_epoch < max_epochs else "FINISHED"
    raise ValueError(f"ending must be {RETURNED!r}, {STOPPED!r} or {ERRORED!r}, got {ending!r}")
