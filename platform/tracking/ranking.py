"""A trial's score, defined once: the results table, the convergence plot and the registry all read it from here.

A trial's score is the best finite value of the search metric among its epochs, and the epoch it came from.
Ray keeps each trial's best checkpoint by that metric (``CheckpointConfig(checkpoint_score_attribute=…)``, see
``checkpoint_config``) beside its latest one, so the score is read from the checkpoints Ray kept, and the model
behind a score is always on disk: what is ranked is what gets registered. Ties go to the later epoch, as Ray's
checkpoint manager breaks them. Errored trials rank after every trial that ended cleanly (their best checkpoint
may predate a divergence, but the registry never takes it), then trials without any finite score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mritune.platform.tracking.trial_runs import is_finite_number


@dataclass(frozen=True)
class TrialScore:
    trial_id: str
    status: str  # "OK" or "ERROR"
    epochs: int  # epochs the trial trained (its last training_iteration)
    value: float | None  # best finite search-metric value, None when the trial never reported one
    epoch: int | None  # the epoch (training_iteration) whose checkpoint holds that value
    checkpoint: Any = None  # ray.tune.Checkpoint of that epoch
    metrics: dict[str, Any] = field(default_factory=dict)  # everything the trial reported at that epoch
    # The config in force at that epoch (Tune records it with every result): under PBT/PB2 a trial's config
    # changes as it copies others, and the scored epoch's is the one that trained its last epochs.
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def registrable(self) -> bool:
        return self.status == "OK" and self.value is not None and self.checkpoint is not None


def checkpoint_config(*, metric: str, mode: str, population: bool = False):
    """Keep each trial's best checkpoint by the search metric; Ray also always keeps the latest (for resume).

    ``population`` (pbt, pb2): keep every checkpoint. A trial may copy another trial's checkpoint of its last
    perturbation, and with one kept Ray deletes it as soon as the other trial reports a better epoch, which can be
    before the copying trial has restarted from it (Ray's PBT warns at ``num_to_keep <= 2``). Disk: every epoch of
    every trial.
    """
    from ray import tune

    return tune.CheckpointConfig(num_to_keep=None if population else 1, checkpoint_score_attribute=metric,
                                 checkpoint_score_order=mode)


def score_trial(result, *, metric: str, mode: str) -> TrialScore:
    """The score of one ``ray.tune.Result``."""
    last = result.metrics or {}
    kept = [(metrics.get(metric), int(metrics.get("training_iteration", 0)), (checkpoint, dict(metrics)))
            for checkpoint, metrics in result.best_checkpoints or []]
    best = best_of(kept, mode=mode)
    value, epoch, (checkpoint, metrics) = best if best else (None, None, (None, {}))
    return TrialScore(
        trial_id=str(last.get("trial_id") or (Path(result.path).name if result.path else "?")),
        status="ERROR" if result.error else "OK",
        epochs=int(last.get("training_iteration", 0)),
        value=value, epoch=epoch, checkpoint=checkpoint, metrics=metrics,
        config=dict(metrics.get("config") or result.config or {}),
    )


def best_of(values, *, mode: str) -> tuple[float, int, Any] | None:
    """The best finite ``(value, epoch, payload)`` of ``values`` (ties: the later epoch), or None.

    The one rule behind a trial's score, whether its epochs come from Ray's kept checkpoints (``score_trial``)
    or from the metric history of its MLflow run (the search report of a running search).
    """
    best: tuple[float, int, Any] | None = None
    for value, epoch, payload in values:
        if not is_finite_number(value):
            continue
        if best is None or _better((value, epoch), (best[0], best[1]), mode):
            best = (float(value), int(epoch), payload)
    return best


def rank_trials(results, *, metric: str, mode: str) -> list[TrialScore]:
    """Every trial's score, best first: clean trials by score, then errored ones, then those without a score."""
    return sort_scores([score_trial(result, metric=metric, mode=mode) for result in results], mode=mode)


def sort_scores(scores: list[TrialScore], *, mode: str) -> list[TrialScore]:
    """Scores best first: clean trials by score, then errored ones, then those without a score."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(scores, key=lambda s: (s.value is None, s.status != "OK", sign * (s.value or 0.0), s.trial_id))


def _better(candidate: tuple[float, int], incumbent: tuple[float, int], mode: str) -> bool:
    value, epoch = candidate
    best_value, best_epoch = incumbent
    if value != best_value:
        return value > best_value if mode == "max" else value < best_value
    return epoch > best_epoch


def best_so_far(points: list[tuple[float, float | None]], *, mode: str) -> list[tuple[float, float]]:
    """``(x, best value up to x)`` for points ``(x, value)`` sorted by x; points before any finite value drop."""
    out, best = [], None
    for x, value in sorted(points, key=lambda p: p[0]):
        if value is not None and math.isfinite(value):
            best = value if best is None else (max(best, value) if mode == "max" else min(best, value))
        if best is not None:
            out.append((x, best))
    return out
