"""A checkpoint's hyperparameter schedule: which config trained which epochs of the model it holds.

Under a population-based scheduler (pbt, pb2) a trial may continue from another trial's checkpoint with other
hyperparameters, so the model in a checkpoint was trained by a sequence of configs, not one. The Tune trainable
(``tune_trainables``) writes ``schedule.json`` into every checkpoint it reports: the schedule of the checkpoint it
resumed from (cut at that checkpoint's epoch), plus a segment for the epochs this trial process trains if its
config or trial differs from the last one. The file travels with the weights when a trial copies another, so it
always describes exactly the model beside it; re-runs replay it (``platform/registry/rerun.py``) in stages
(:class:`Stage`): each config as it was, its ``epochs`` still the planned length (the horizon of an epoch-based
learning rate schedule), trained up to its stretch's last epoch (the training function's ``until_epoch``).

Example ``schedule.json``, a model whose epochs 1-2 trial ``a_00001`` trained and whose later epochs ``a_00000``
trained after copying it with a lower learning rate::

    {"version": 1, "segments": [
        {"from_epoch": 1, "trial_id": "a_00001", "config": {"learning_rate": 0.002, ...}},
        {"from_epoch": 3, "trial_id": "a_00000", "config": {"learning_rate": 0.0016, ...}}]}
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

SCHEDULE_FILE = "schedule.json"
SCHEDULE_VERSION = 1


@dataclass(frozen=True)
class Segment:
    """``config`` trained the epochs from ``from_epoch`` (1-based) up to the next segment's, in trial ``trial_id``."""

    from_epoch: int
    trial_id: str
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"from_epoch": self.from_epoch, "trial_id": self.trial_id, "config": self.config}


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One training call of a re-run: ``config`` trained up to and including epoch ``until_epoch``, resuming the
    previous stage's checkpoint (the first starts from scratch).

    ``config["epochs"]`` stays the trial's, not ``until_epoch``: it is the horizon of the DCGAN's cosine learning
    rates, so a stage that stops early trains each epoch at the rate the trial trained it at."""

    config: dict[str, Any]
    until_epoch: int


def extended(previous: list[Segment], *, resumed_epoch: int, trial_id: str, config: Mapping[str, Any]
             ) -> list[Segment]:
    """The schedule of a training that resumes after ``resumed_epoch`` of a checkpoint whose schedule is
    ``previous`` (empty: a fresh training, ``resumed_epoch`` 0) with ``config`` in trial ``trial_id``."""
    kept = [segment for segment in previous if segment.from_epoch <= resumed_epoch]
    config = plain(dict(config))
    if kept and kept[-1].config == config and kept[-1].trial_id == trial_id:
        return kept  # the same lineage goes on (a restart after a crash)
    return [*kept, Segment(from_epoch=resumed_epoch + 1, trial_id=trial_id, config=config)]


def write_schedule(folder: str | Path, segments: list[Segment]) -> None:
    payload = {"version": SCHEDULE_VERSION, "segments": [segment.to_dict() for segment in segments]}
    (Path(folder) / SCHEDULE_FILE).write_text(json.dumps(payload, indent=1, sort_keys=True))


def read_schedule(folder: str | Path) -> list[Segment]:
    """The schedule beside a checkpoint; empty when it has none (written before schedules, or outside Tune)."""
    path = Path(folder) / SCHEDULE_FILE
    return parse_schedule(path.read_bytes()) if path.is_file() else []


def parse_schedule(raw: bytes | str) -> list[Segment]:
    data = json.loads(raw)
    return [Segment(from_epoch=int(item["from_epoch"]), trial_id=str(item["trial_id"]), config=dict(item["config"]))
            for item in data.get("segments", [])]


def replay_stages(segments: list[Segment], *, until_epoch: int, overrides: Mapping[str, Any]) -> list[Stage]:
    """The stages that train a model through the schedule again: one per stretch of epochs with one config, each
    stopping at the stretch's last epoch (each stage resumes from the previous stage's checkpoint), the last at
    ``until_epoch``; ``overrides`` (a new seed) go into every stage's config, which is otherwise the segment's.

    Example:
        >>> s = [Segment(1, "a", {"lr": 0.1, "epochs": 8}), Segment(3, "b", {"lr": 0.1, "epochs": 8}),
        ...      Segment(4, "b", {"lr": 0.05, "epochs": 8})]
        >>> [(stage.config, stage.until_epoch) for stage in replay_stages(s, until_epoch=5, overrides={"seed": 7})]
        [({'lr': 0.1, 'epochs': 8, 'seed': 7}, 3), ({'lr': 0.05, 'epochs': 8, 'seed': 7}, 5)]
    """
    stages: list[Stage] = []
    kept = [segment for segment in segments if segment.from_epoch <= until_epoch]
    for index, segment in enumerate(kept):
        end = kept[index + 1].from_epoch - 1 if index + 1 < len(kept) else until_epoch
        config = {**segment.config, **overrides}
        if stages and stages[-1].config == config:
            stages[-1] = Stage(config=config, until_epoch=end)  # the same config goes on (another trial, or a no-op)
        else:
            stages.append(Stage(config=config, until_epoch=end))
    return stages


def stages_schedule(stages: list[Stage], *, trial_id: str) -> list[Segment]:
    """The schedule of a model trained through ``stages`` (``replay_stages``' output) in ``trial_id``."""
    starts = [1] + [stage.until_epoch + 1 for stage in stages[:-1]]
    return [Segment(from_epoch=start, trial_id=trial_id, config=plain(dict(stage.config)))
            for start, stage in zip(starts, stages)]


def plain(value: Any) -> Any:
    """JSON's own types for a config's values (NumPy scalars from a scheduler become ints and floats)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)
