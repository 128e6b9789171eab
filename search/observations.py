"""Ask/tell bookkeeping shared by mritune's searchers: pending trials, finished trials, and their JSON state.

Values are stored in the user's sign; :meth:`ObservationLog.minimization_data` is the ONE place where the sign
flips (``mode="max"`` → negate), and it only ever returns finite values, so NaN, inf, missing metrics and errored
trials never reach a model. They stay in the log (with their status) so the platform can show them.

Early-stopped trials (ASHA): Tune hands ``on_trial_complete`` the trial's last reported result, so the model
learns from the value at the trial's last reported rung. That value is pessimistic for a config that would have
improved with more epochs, which is the right bias: ASHA stopped it because it was worse than its peers at that
rung, and the model should steer away from its neighbourhood just as ASHA did.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

# 2: the state also carries the search space and the searcher's options, so a searcher constructed with no
# arguments can restore it (Ray's searcher contract); 1 (no space, no options) still loads.
STATE_VERSION = 2
READABLE_STATE_VERSIONS = (1, 2)

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_NONFINITE = "nonfinite"
STATUS_MISSING = "missing"


@dataclass(frozen=True)
class Observation:
    """One finished trial as the platform logs it; ``value`` is in the user's metric sign (None if unusable)."""

    trial_id: str
    config: dict
    value: float | None
    status: str
    iteration: int | None = None

    def as_dict(self) -> dict:
        return {"trial_id": self.trial_id, "config": self.config, "value": self.value, "status": self.status,
                "iteration": self.iteration}


def classify_result(result: dict | None, metric: str, *, error: bool) -> tuple[float | None, str]:
    """Value and status of a finished trial's final result."""
    if error:
        return None, STATUS_ERROR
    if not result or metric not in result or result[metric] is None:
        return None, STATUS_MISSING
    raw = result[metric]
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
        try:
            raw = float(np.asarray(raw).item())
        except (TypeError, ValueError):
            return None, STATUS_MISSING
    value = float(raw)
    if not math.isfinite(value):
        return None, STATUS_NONFINITE
    return value, STATUS_OK


class ObservationLog:
    """Pending and finished trials of one search."""

    def __init__(self) -> None:
        self.pending: dict[str, dict] = {}
        self.finished: list[Observation] = []
        # trial id -> its config in the unit cube. A trial's config never changes, and encoding a thousand
        # configs on every suggestion cost 70 ms; not part of the state.
        self._encoded: dict[str, np.ndarray] = {}

    def encoded(self, trial_id: str, config: dict, encode) -> np.ndarray:
        """``encode(config)`` of a trial, computed once (the log belongs to one searcher, so one space)."""
        row = self._encoded.get(trial_id)
        if row is None:
            row = self._encoded[trial_id] = encode(config)
        return row

    def add_pending(self, trial_id: str, config: dict) -> None:
        self.pending[trial_id] = config

    def finish(self, trial_id: str, result: dict | None, metric: str, *, error: bool) -> Observation | None:
        """Move a trial from pending to finished. Unknown trial ids (not suggested by us) are ignored."""
        config = self.pending.pop(trial_id, None)
        if config is None:
            return None
        value, status = classify_result(result, metric, error=error)
        iteration = (result or {}).get("training_iteration")
        observation = Observation(trial_id=trial_id, config=config, value=value, status=status,
                                  iteration=int(iteration) if isinstance(iteration, numbers.Integral) else None)
        self.finished.append(observation)
        return observation

    def add_external(self, config: dict, value: float | None, *, error: bool) -> Observation:
        """An evaluated point given by the user (``points_to_evaluate`` with rewards, ``add_evaluated_point``)."""
        value_out, status = classify_result(None if value is None else {"v": value}, "v", error=error)
        observation = Observation(trial_id=f"external-{len(self.finished)}", config=config, value=value_out,
                                  status=status)
        self.finished.append(observation)
        return observation

    def usable(self) -> list[Observation]:
        return [o for o in self.finished if o.status == STATUS_OK]

    def minimization_data(self, encode, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) of usable observations for a minimizing model; the only place the sign flips."""
        usable = self.usable()
        if not usable:
            return np.zeros((0, 0)), np.zeros(0)
        sign = -1.0 if mode == "max" else 1.0
        X = np.vstack([self.encoded(o.trial_id, o.config, encode) for o in usable])
        y = np.array([sign * o.value for o in usable], dtype=float)
        return X, y

    def pending_design(self, encode) -> np.ndarray | None:
        if not self.pending:
            return None
        return np.vstack([self.encoded(trial_id, config, encode) for trial_id, config in self.pending.items()])

    # ------------------------------------------------------------------------------------------------ state

    def to_state(self) -> dict:
        return {"pending": [{"trial_id": t, "config": c} for t, c in self.pending.items()],
                "finished": [o.as_dict() for o in self.finished]}

    @classmethod
    def from_state(cls, state: dict) -> "ObservationLog":
        log = cls()
        log.pending = {p["trial_id"]: p["config"] for p in state["pending"]}
        log.finished = [Observation(**o) for o in state["finished"]]
        return log


def check_state(state: Any, owner: str) -> dict:
    """Validate a searcher state dict before restoring it."""
    if not isinstance(state, dict) or "version" not in state:
        raise ValueError(f"{owner}: not a searcher state (no 'version' key); restore a file written by save()")
    if state["version"] not in READABLE_STATE_VERSIONS:
        raise ValueError(f"{owner}: state version {state['version']} is not supported (expected one of "
                         f"{', '.join(map(str, READABLE_STATE_VERSIONS))})")
    if state.get("searcher") != owner:
        raise ValueError(f"{owner}: state was written by {state.get('searcher')!r}; restore it into that searcher")
    return state
