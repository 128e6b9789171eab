"""Rung levels of Ray's ``ASHAScheduler`` and the per-rung results a multi-fidelity searcher learns from.

ASHA does not label a result with its rung, so the levels are recomputed from the scheduler's settings exactly as
Ray does (``ray/tune/schedulers/async_hyperband.py``, ``_Bracket.__init__``, bracket ``s = 0``)::

    MAX_RUNGS = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    milestones = [grace_period * reduction_factor ** k for k in range(MAX_RUNGS)]

ASHA records a trial at a milestone with its first result whose ``training_iteration >= milestone``; iterations
count 1, 2, 3, … so that is iteration ``ceil(milestone)``. ``max_t`` is a level too (ASHA stops every trial there),
so a trial that survives all rungs contributes its final value. Results between levels are not rung observations.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from mritune.search.observations import classify_result

# 3 ** 2 is 9.000000000000002 in floating point; a milestone this close to an integer is that integer.
_INTEGER_TOL = 1e-9


def asha_levels(*, max_t: int, grace_period: int = 1, reduction_factor: float = 3) -> tuple[int, ...]:
    """The ``training_iteration`` values at which ASHA (one bracket) records a trial, plus ``max_t``; ascending.

    Raises:
        ValueError: ``max_t`` or ``grace_period`` not a positive integer, ``grace_period > max_t``, or
            ``reduction_factor <= 1``.

    Example:
        >>> asha_levels(max_t=27, grace_period=1, reduction_factor=3)
        (1, 3, 9, 27)
    """
    for name, value in (("max_t", max_t), ("grace_period", grace_period)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer (epochs), got {value!r}")
    if grace_period > max_t:
        raise ValueError(f"grace_period must be <= max_t={max_t}, got {grace_period!r}")
    if isinstance(reduction_factor, bool) or not isinstance(reduction_factor, numbers.Real) \
            or not reduction_factor > 1:
        raise ValueError(f"reduction_factor must be a number > 1, got {reduction_factor!r}")
    n_rungs = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    milestones = [grace_period * reduction_factor**k for k in range(n_rungs)]
    levels = {math.ceil(m - _INTEGER_TOL) for m in milestones} | {int(max_t)}
    return tuple(sorted(level for level in levels if level <= max_t))


@dataclass(frozen=True)
class RungObservation:
    """A trial's metric value (user's sign, finite) at one rung level."""

    trial_id: str
    level: int
    value: float


class RungLog:
    """Finite metric values per (trial, level); a trial's value at a level is recorded once (the first one)."""

    def __init__(self, levels: tuple[int, ...]) -> None:
        self.levels = levels
        self._observations: dict[tuple[str, int], RungObservation] = {}

    def record(self, trial_id: str, result: dict | None, metric: str) -> RungObservation | None:
        """Record ``result`` if it is at a rung level and its metric is finite; return what was recorded."""
        iteration = (result or {}).get("training_iteration")
        if isinstance(iteration, bool) or not isinstance(iteration, numbers.Integral) \
                or int(iteration) not in self.levels:
            return None
        value, _status = classify_result(result, metric, error=False)
        key = (trial_id, int(iteration))
        if value is None or key in self._observations:
            return None
        self._observations[key] = RungObservation(trial_id, int(iteration), value)
        return self._observations[key]

    def add(self, trial_id: str, level: int, value: float) -> None:
        """An externally evaluated point (``add_evaluated_point``) at the given level."""
        self._observations[(trial_id, level)] = RungObservation(trial_id, level, float(value))

    def observations(self) -> list[RungObservation]:
        return list(self._observations.values())

    def next_level(self, trial_id: str) -> int:
        """The level a running trial reports next: the one after its highest recorded level."""
        reached = [lvl for tid, lvl in self._observations if tid == trial_id]
        if not reached:
            return self.levels[0]
        above = [lvl for lvl in self.levels if lvl > max(reached)]
        return above[0] if above else self.levels[-1]

    def to_state(self) -> list[list]:
        return [[o.trial_id, o.level, o.value] for o in self._observations.values()]

    @classmethod
    def from_state(cls, levels: tuple[int, ...], rows: list[list]) -> "RungLog":
        log = cls(levels)
        for trial_id, level, value in rows:
            log.add(str(trial_id), int(level), float(value))
        return log
