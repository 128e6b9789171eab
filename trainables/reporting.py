"""Values a training hands to whoever runs it (the CLI, a Ray Tune trainable, a test).

Trainings know nothing of Ray or MLflow: they call ``report(EpochReport(...))`` once per epoch and return a
``TrainingResult``. The Tune wrappers turn reports into ``ray.tune.report`` calls; the platform adds MLflow
logging through a ``TrialObserver``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np


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


class TrainingDiverged(RuntimeError):
    """Raised when losses become NaN/inf or a documented collapse rule fires; the trial ends as failed."""
