"""Replay a recorded table through a searcher and a scheduler: the simulated backend (an event queue) and the trace.

``simulate`` drives the searcher and the scheduler the way Tune's loop does — ``suggest`` when a worker is free,
``on_trial_result`` for every epoch to both, the scheduler's CONTINUE/STOP, ``on_trial_complete`` at the end —
with ``WORKERS`` workers whose epochs take the recorded seconds, so results arrive in the order they would on
four equally fast workers of the recording machine. The scheduler is the real ``ASHAScheduler``/``FIFOScheduler``
object ``build_scheduler`` returns (its ``_Bracket`` rule, not a copy). Time is counted in epochs and in recorded
seconds; the searcher's own compute (its calls' wall time) is counted apart.

Pairing: a study seed fixes the first points every method starts from and the recorded seed that the n-th trial of
any method replays, so methods differ only by what they choose.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

METRIC = "val_macro_f1"


def trial_slots(seed: int, n_seeds: int, count: int = 20_000) -> np.ndarray:
    """Which recorded seed the n-th trial of a study seed replays (the same for every method)."""
    return np.random.default_rng([seed, 1]).integers(n_seeds, size=count)


def first_points(table, seed: int, count: int, *, restricted: bool = True) -> list[dict]:
    """The first configurations every method tries for a study seed: recorded ones drawn without replacement
    (``restricted``), else uniform points of the table's unit cube."""
    rng = np.random.default_rng([seed, 2])
    if restricted:
        return [dict(table.configs[i]) for i in rng.choice(len(table.configs), size=count, replace=False)]
    return [table.space.decode(u) for u in rng.random((count, table.space.dim))]


def prepare_searcher(searcher, table, param_space: dict, *, restricted: bool, mode: str = "max") -> None:
    """What Tune does before the first suggestion (search properties), then, for a ``restricted`` study, limit
    the searcher to the table's configurations (``restrict_to``, as Syne Tune's ``restrict_configurations``):
    with a sparse table, 1-nearest-neighbour answers would give a model-based searcher that proposes near its
    incumbent the same recorded configuration again and again."""
    searcher.set_search_properties(METRIC, mode, param_space)
    if restricted:
        getattr(searcher, "searcher", searcher).restrict_to(list(table.configs))  # inside the ConcurrencyLimiter


@dataclass
class _Trial:
    trial_id: str
    index: int
    row: int
    curve: object
    epochs: int = 0
    best: float = -math.inf
    errored: bool = False


@dataclass
class Trace:
    """The platform's current pick after every epoch, as (epochs used, recorded seconds, regret, test macro-F1).

    The pick is the trial ``platform/ranking`` would register: the best val macro-F1 any trial reported (ties:
    the earlier trial, whose id sorts first), errored trials only when nothing else scored. Its worth is the
    table's score of its configuration trained the epochs it has trained (``search/replay.py``).
    """

    table: object
    points: list = field(default_factory=list)
    trials: dict = field(default_factory=dict)
    pick: _Trial | None = None

    def add(self, trial: _Trial) -> None:
        self.trials[trial.trial_id] = trial

    def after_epoch(self, trial: _Trial, epochs_used: int, seconds: float) -> None:
        if self.pick is None or _rank_key(trial) < _rank_key(self.pick):
            self.pick = trial
        self._record(epochs_used, seconds)

    def after_error(self, trial: _Trial, epochs_used: int, seconds: float) -> None:
        trial.errored = True
        if self.pick is trial:
            self.pick = min(self.trials.values(), key=_rank_key)
            if self.pick.epochs:
                self._record(epochs_used, seconds)

    def trials_run(self) -> list[list]:
        """[index, recorded row, epochs trained, best val reported, errored] of every trial, in start order."""
        return [[t.index, t.row, t.epochs, None if t.best == -math.inf else t.best, t.errored]
                for t in sorted(self.trials.values(), key=lambda t: t.index)]

    def _record(self, epochs_used: int, seconds: float) -> None:
        pick = self.pick
        regret = self.table.best_score - self.table.score(pick.row, max(1, pick.epochs))
        test = self.table.test_score(pick.row, max(1, pick.epochs))
        point = [epochs_used, round(seconds, 2), round(regret, 5), round(test, 5)]
        if self.points and self.points[-1][2:] == point[2:]:
            return  # only changes are kept: the trace stays small
        self.points.append(point)


def _rank_key(trial: _Trial) -> tuple:
    return (trial.errored or trial.best == -math.inf, -trial.best, trial.index)


class _Timed:
    """Wall seconds spent inside the searcher's calls (its model fits), counted apart from replayed time."""

    def __init__(self, searcher) -> None:
        self.searcher, self.seconds = searcher, 0.0

    def __call__(self, method: str, *args, **kwargs):
        started = time.perf_counter()
        try:
            return getattr(self.searcher, method)(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


@dataclass(frozen=True)
class _TrialRef:
    trial_id: str  # all the scheduler reads from a trial


def simulate(table, searcher, scheduler, *, seed: int, budget_epochs: int, workers: int = 4) -> dict:
    """Run one search until the trials together trained ``budget_epochs`` epochs; return its trace and counts.

    ``searcher`` has its search properties already (``prepare_searcher``).
    """
    from ray.tune.schedulers import TrialScheduler

    call = _Timed(searcher)
    slots = trial_slots(seed, len(table.seeds))
    trace, queue = Trace(table=table), []
    now, epochs_used, started = 0.0, 0, 0

    def start_trial() -> None:
        nonlocal started
        trial_id = f"sim{started:06d}"
        config = call("suggest", trial_id)
        if not isinstance(config, dict):
            raise RuntimeError(f"searcher returned {config!r} with a worker free")
        row = table.nearest(config)
        trial = _Trial(trial_id=trial_id, index=started, row=row, curve=table.curve(row, int(slots[started])))
        started += 1
        trace.add(trial)
        scheduler.on_trial_add(None, _TrialRef(trial_id))
        if trial.curve.epochs == 0:  # diverged before its first report
            end_trial(trial, None, error=True)
            return
        heapq.heappush(queue, (now + float(trial.curve.seconds[0]), trial.index, trial))

    def end_trial(trial: _Trial, result: dict | None, *, error: bool) -> None:
        # As Tune's controller: an errored trial tells the searcher with error=True and no result; a running
        # trial that ends (done, or stopped by the scheduler) completes on both with its last result.
        if error:
            call("on_trial_complete", trial.trial_id, None, error=True)
            scheduler.on_trial_error(None, _TrialRef(trial.trial_id))
            trace.after_error(trial, epochs_used, now)
        else:
            scheduler.on_trial_complete(None, _TrialRef(trial.trial_id), result)
            call("on_trial_complete", trial.trial_id, result)
        if epochs_used < budget_epochs:
            start_trial()

    for _ in range(workers):
        start_trial()
    while queue and epochs_used < budget_epochs:
        now, _, trial = heapq.heappop(queue)
        trial.epochs += 1
        epochs_used += 1
        value = float(trial.curve.val[trial.epochs - 1])
        trial.best = max(trial.best, value)
        result = {METRIC: value, "val_loss": float(trial.curve.val_loss[trial.epochs - 1]),
                  "training_iteration": trial.epochs, "trial_id": trial.trial_id}
        trace.after_epoch(trial, epochs_used, now)
        decision = scheduler.on_trial_result(None, _TrialRef(trial.trial_id), result)
        if decision != TrialScheduler.STOP:  # Tune shows the searcher a stopping result only at completion
            call("on_trial_result", trial.trial_id, result)
        if decision == TrialScheduler.STOP or trial.epochs >= trial.curve.epochs:
            # The end of its recording is max_t, or where the training diverged (an error).
            end_trial(trial, result, error=decision != TrialScheduler.STOP and trial.curve.epochs < table.max_t)
        else:
            heapq.heappush(queue, (now + float(trial.curve.seconds[trial.epochs]), trial.index, trial))
    return {"trace": trace.points, "trials": started, "epochs": epochs_used, "seconds": round(now, 1),
            "searcher_s": round(call.seconds, 2), "trials_run": trace.trials_run()}
