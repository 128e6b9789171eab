"""The report's records and what each plot draws: plain dataclasses and pure functions, no MLflow, no drawing.

Times are seconds since the search's parent run started. A trial's score is ``ranking.best_of`` over its epochs,
the same rule the results table and the registry use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mritune.platform.tracking.ranking import TrialScore, best_of, best_so_far, sort_scores
from mritune.search.population import ExploitEvent

# How a trial ended, as the report names it (from the run's status and the driver's `stopped_by` tag).
COMPLETED, STOPPED, FAILED, RUNNING, KILLED = "completed", "stopped by ASHA", "failed", "running", "killed"

# Legible at a thousand trials: the parallel coordinates and learning curves draw the TOP_TRIALS best trials in
# colour on top of the others in faint grey; the timeline labels its bars while there are at most
# TIMELINE_LABELS_MAX of them (then only the top trials'); the page's trial table shows the TABLE_ROWS best and
# folds the rest under a "N more trials" line.
TOP_TRIALS = 20
TIMELINE_LABELS_MAX = 80
TABLE_ROWS = 50


@dataclass(frozen=True, kw_only=True)
class EpochPoint:
    epoch: int
    value: float | None  # the search metric at this epoch (None: not finite)
    time_s: float  # when the epoch was logged


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    trial_id: str
    run_id: str
    run_name: str
    outcome: str  # COMPLETED | STOPPED | FAILED | RUNNING | KILLED
    start_s: float
    end_s: float  # for a running trial: its latest epoch
    config: dict[str, Any]  # the searched hyperparameters, typed
    curve: tuple[EpochPoint, ...] = ()
    number: int = 0  # the order Tune started the trials in, from 1 (run_callbacks.TrialRunNamer)
    # The search metric's real-vs-real floor as the trial last reported it (SearchRecord.floor_metric; the same
    # every epoch of a trial: real images against real ones), None: the metric has no floor or none was logged.
    floor: float | None = None
    # pbt/pb2: each time the trial copied another (tracking/lineage.py), in order; config holds its first values.
    lineage: tuple[ExploitEvent, ...] = ()

    @property
    def last_epoch(self) -> int:
        return max((point.epoch for point in self.curve), default=0)

    def score(self, mode: str) -> TrialScore:
        best = best_of(((p.value, p.epoch, None) for p in self.curve), mode=mode)
        return TrialScore(
            trial_id=self.trial_id, status="ERROR" if self.outcome == FAILED else "OK", epochs=self.last_epoch,
            value=best[0] if best else None, epoch=best[1] if best else None, config=dict(self.config),
        )


@dataclass(frozen=True, kw_only=True)
class SpaceParam:
    name: str
    kind: str  # float | int | ordinal | categorical (search.space.Param.kind)
    lower: float = 0.0
    upper: float = 1.0
    log: bool = False
    values: tuple = ()


@dataclass(frozen=True, kw_only=True)
class ChampionDecision:
    model_name: str
    version: str
    alias: str
    trial_id: str
    epoch: str
    gate_metric: str
    gate_value: float | None
    reason: str  # the registry's one-line reason, e.g. "test_macro_f1 0.71 beats v2's 0.64"
    gate_floor: float | None = None  # the gate metric's real-vs-real floor (a version tag), None: it has none


@dataclass(frozen=True, kw_only=True)
class SearchRecord:
    name: str
    task: str
    status: str  # the parent run's status
    metric: str
    mode: str
    algorithm: str
    scheduler: str
    max_t: int
    grace_period: int
    reduction_factor: float
    num_samples: int
    experiment_id: str
    parent_run_id: str
    ui_url: str  # the MLflow UI the trial links point to
    duration_s: float
    space: tuple[SpaceParam, ...]
    trials: tuple[TrialRecord, ...]
    decision: ChampionDecision | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    reruns: Any = None  # rerun_summary.RerunSummary the search logged (rerun/summary.json), or None
    floor_metric: str | None = None  # the metric holding the search metric's floor (Task.floor_metrics), or None
    perturbed: tuple[str, ...] = ()  # pbt/pb2: the settings the scheduler perturbed; () for other schedulers

    def ranked(self) -> list[tuple[TrialScore, TrialRecord]]:
        """Trials best first (``ranking.sort_scores``) with their records."""
        by_id = {trial.trial_id: trial for trial in self.trials}
        scores = sort_scores([trial.score(self.mode) for trial in self.trials], mode=self.mode)
        return [(score, by_id[score.trial_id]) for score in scores]

    def ranked_trials(self) -> list[TrialRecord]:
        """The trials best first (unscored ones last), as ``ranked`` orders them."""
        return [trial for _, trial in self.ranked()]

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{run_id}?workflowType=machine_learning"


@dataclass(frozen=True, kw_only=True)
class LineageRow:
    """One copy in a population-based search, as the lineage table shows it."""

    trial: TrialRecord  # the trial that copied
    source: TrialRecord | None  # the trial it copied (None: its run is not in this search's runs)
    event: ExploitEvent  # its time in seconds since the search started


def lineage_rows(record: SearchRecord) -> list[LineageRow]:
    """Every copy of the search in the order they happened."""
    by_id = {trial.trial_id: trial for trial in record.trials}
    rows = [LineageRow(trial=trial, source=by_id.get(event.source_trial_id), event=event)
            for trial in record.trials for event in trial.lineage]
    return sorted(rows, key=lambda row: (row.event.time, row.trial.number))


def schedule_points(trial: TrialRecord, key: str) -> list[tuple[int, Any]]:
    """``(first epoch, value)`` of ``key`` in ``trial``: its own value from epoch 1, then the value each copy gave
    it from the epoch after the copied checkpoint's (``source_epoch + 1``)."""
    points = [(1, trial.config.get(key))]
    for event in trial.lineage:
        points.append((event.source_epoch + 1, event.new.get(key)))
    return points


def asha_rungs(*, max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The epochs below ``max_t`` where Ray's ASHA compares trials: ``search.rungs.asha_levels`` (Ray's rule,
    ``ceil`` of each milestone) without ``max_t`` itself, where every trial stops anyway."""
    from mritune.search.rungs import asha_levels

    levels = asha_levels(max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor)
    return [level for level in levels if level < max_t]


@dataclass(frozen=True, kw_only=True)
class RerunColumn:
    """One re-run configuration as the winner's-curse plot draws it."""

    label: str  # "#<rank> <trial id>"
    search_value: float  # the trial's best validation score in the search
    val: tuple[float, ...]  # each re-run's validation score
    test: tuple[float, ...]  # each re-run's test score
    interval: tuple[float, float, float] | None  # (mean, low, high) of the test scores
    registered: bool


def rerun_columns(summary) -> list[RerunColumn]:
    """The winner's-curse plot's columns, best-ranked first (``summary`` a ``rerun_summary.RerunSummary``)."""
    columns = []
    for index, config in enumerate(summary.configs):
        interval = config.interval
        columns.append(RerunColumn(
            label=f"#{config.rank} {config.trial_id}", search_value=config.trial_value,
            val=tuple(r.val for r in config.results if r.ok), test=tuple(r.test for r in config.results if r.ok),
            interval=None if interval is None else (interval.mean, interval.low, interval.high),
            registered=index == summary.chosen))
    return columns


def best_by_time(record: SearchRecord) -> list[tuple[float, float]]:
    """Best score so far against wall time: every epoch counts when it was logged."""
    points = [(p.time_s, p.value) for trial in record.trials for p in trial.curve]
    return best_so_far(points, mode=record.mode)


def best_by_trial(record: SearchRecord) -> list[tuple[float, float | None, float]]:
    """``(position, its score, best score so far)`` with the trials in the order they started, numbered from 1;
    unscored trials keep the best. By start, not by the driver's numbers: those start again at 1 after a resume
    and are 0 for a trial that failed before its first result."""
    rows, best = [], None
    started = sorted(record.trials, key=lambda t: (t.start_s, t.number, t.trial_id))
    for position, trial in enumerate(started, start=1):
        value = trial.score(record.mode).value
        if value is not None:
            best = value if best is None else (max(best, value) if record.mode == "max" else min(best, value))
        rows.append((position, value, best))
    return rows


@dataclass(frozen=True, kw_only=True)
class TimelineBar:
    trial_id: str
    slot: int
    start_s: float
    end_s: float
    outcome: str


def timeline(trials: tuple[TrialRecord, ...] | list[TrialRecord]) -> list[TimelineBar]:
    """One bar per trial on the lowest worker slot free when it started (slots = the concurrency reached)."""
    slot_free_at: list[float] = []
    bars = []
    for trial in sorted(trials, key=lambda t: (t.start_s, t.number)):
        slot = next((i for i, free in enumerate(slot_free_at) if free <= trial.start_s), len(slot_free_at))
        if slot == len(slot_free_at):
            slot_free_at.append(trial.end_s)
        slot_free_at[slot] = trial.end_s
        bars.append(TimelineBar(trial_id=trial.trial_id, slot=slot, start_s=trial.start_s, end_s=trial.end_s,
                                outcome=trial.outcome))
    return bars


def idle_gaps(bars: list[TimelineBar], *, span_s: float, min_gap_s: float = 0.0) -> list[tuple[int, float, float]]:
    """``(slot, start, end)`` stretches of ``[0, span_s]`` where a slot ran no trial."""
    gaps = []
    for slot in sorted({bar.slot for bar in bars}):
        cursor = 0.0
        for bar in sorted((b for b in bars if b.slot == slot), key=lambda b: b.start_s):
            if bar.start_s - cursor > min_gap_s:
                gaps.append((slot, cursor, bar.start_s))
            cursor = max(cursor, bar.end_s)
        if span_s - cursor > min_gap_s:
            gaps.append((slot, cursor, span_s))
    return gaps


def slot_utilisation(bars: list[TimelineBar], *, span_s: float) -> float:
    """Share of the slots' time spent running trials (0..1)."""
    slots = len({bar.slot for bar in bars})
    if not slots or span_s <= 0:
        return 0.0
    return min(1.0, sum(bar.end_s - bar.start_s for bar in bars) / (slots * span_s))


def encode_param(param: SpaceParam, value: Any) -> float | None:
    """A hyperparameter's position on its parallel-coordinates axis, 0..1 (log axes for log-scaled ones)."""
    if param.kind in ("ordinal", "categorical"):
        labels = [str(v) for v in param.values]
        if str(value) not in labels:
            return None
        return labels.index(str(value)) / max(1, len(labels) - 1)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    lower, upper, x = float(param.lower), float(param.upper), float(value)
    if param.log and lower > 0 and x > 0:
        lower, upper, x = math.log(lower), math.log(upper), math.log(x)
    return 0.0 if upper == lower else min(1.0, max(0.0, (x - lower) / (upper - lower)))


def parallel_coordinates(record: SearchRecord) -> list[tuple[str, list[float], float]]:
    """``(trial id, axis positions, score)`` for every scored trial whose searched values are all known."""
    lines = []
    for score, trial in record.ranked():
        if score.value is None:
            continue
        positions = [encode_param(param, trial.config.get(param.name)) for param in record.space]
        if all(position is not None for position in positions):
            lines.append((trial.trial_id, positions, score.value))
    return lines
