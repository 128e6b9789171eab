"""Recorded learning curves as an objective: answer a suggested config with the curve of its nearest recording.

A table recorded by ``benchmarks/curves/record.py`` holds, for each of many configurations of a search space and
each of a few training seeds, every epoch's val macro-F1, val loss, test macro-F1 and seconds. As Syne Tune does
for LCBench, a config a searcher suggests is answered with the curve of the nearest recorded configuration in the
unit cube every mritune searcher proposes in (:class:`~mritune.search.space.SearchSpace`, 1-nearest-neighbour),
for one recorded seed. Only configurations recorded for every seed are used, so a partial table replays too.

What a configuration is worth is defined here once for the studies and the replay test: its **score** is the mean
over seeds of its best val macro-F1 within the epochs it trained (the platform registers a trial's best epoch);
a search's **regret** is the best score in the table (full training) minus the score of the configuration the
search ranked first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mritune.search.space import SearchSpace

FORMAT_VERSION = 1
VAL, VAL_LOSS, TEST, SECONDS = range(4)  # the columns of a recorded epoch (the header's "metrics")
METRIC_NAMES = ("val_macro_f1", "val_loss", "test_macro_f1", "seconds")


@dataclass(frozen=True)
class RecordedCurve:
    """One recorded training: arrays over its epochs (shorter than ``max_t`` when the training diverged)."""

    val: np.ndarray
    val_loss: np.ndarray
    test: np.ndarray
    seconds: np.ndarray

    @property
    def epochs(self) -> int:
        return len(self.val)


@dataclass(frozen=True)
class RecordedCurves:
    """A learning-curve table: ``curves[config, seed_slot, epoch, column]`` (NaN past a diverged training's end).

    Build it with :meth:`load`. ``configs`` are the searched values only; ``space`` is the table's search space.
    """

    header: dict
    space: SearchSpace
    configs: tuple[dict, ...]
    config_indices: tuple[int, ...]  # each row's index in the recorder's Sobol sequence
    seeds: tuple[int, ...]
    curves: np.ndarray
    units: np.ndarray  # (configs, dim): each recorded config in the unit cube
    score_by_epoch: np.ndarray  # (configs, max_t): score when trained e+1 epochs (see the module docstring)
    test_by_epoch: np.ndarray  # (configs, max_t): mean test macro-F1 at each seed's best val epoch within e+1

    @classmethod
    def load(cls, path: str | Path) -> "RecordedCurves":
        """Read a table; raises ``ValueError`` for a file that is not one (or holds no complete configuration).

        Example:
            >>> table = RecordedCurves.load("benchmarks/curves/classifier_32px.jsonl")  # doctest: +SKIP
            >>> table.curve(table.nearest({"learning_rate": 1e-3, ...}), seed_slot=0).val  # doctest: +SKIP
        """
        header, rows = _read_rows(Path(path))
        space = table_space(header)
        seeds = tuple(sorted({row["seed"] for row in rows}))
        by_config: dict[int, dict[int, dict]] = {}
        for row in rows:
            by_config.setdefault(row["config_index"], {})[row["seed"]] = row
        complete = sorted(i for i, per_seed in by_config.items() if set(per_seed) == set(seeds))
        if not complete:
            raise ValueError(f"{path}: no configuration is recorded for every seed {list(seeds)}")
        epochs = int(header["epochs"])
        curves = np.full((len(complete), len(seeds), epochs, len(METRIC_NAMES)), np.nan)
        for i, index in enumerate(complete):
            for j, seed in enumerate(seeds):
                recorded = np.asarray(by_config[index][seed]["curve"], dtype=float).reshape(-1, len(METRIC_NAMES))
                curves[i, j, : len(recorded)] = recorded[:epochs]
        configs = tuple(by_config[index][seeds[0]]["config"] for index in complete)
        units = np.array([space.encode(config) for config in configs])
        score_by_epoch, test_by_epoch = _scores_by_epoch(curves)
        return cls(header=header, space=space, configs=configs, config_indices=tuple(complete), seeds=seeds,
                   curves=curves, units=units, score_by_epoch=score_by_epoch, test_by_epoch=test_by_epoch)

    @property
    def max_t(self) -> int:
        return self.curves.shape[2]

    def nearest(self, config: dict) -> int:
        """Row of the recorded configuration nearest to ``config`` in the unit cube (ties: the lower row)."""
        distances = np.linalg.norm(self.units - self.space.encode(config), axis=1)
        return int(np.argmin(distances))

    def curve(self, row: int, seed_slot: int) -> RecordedCurve:
        """The recording of ``row`` for the ``seed_slot``-th seed, cut where the training ended."""
        data = self.curves[row, seed_slot]
        length = int(np.sum(~np.isnan(data[:, VAL])))
        data = data[:length]
        return RecordedCurve(val=data[:, VAL], val_loss=data[:, VAL_LOSS], test=data[:, TEST],
                             seconds=data[:, SECONDS])

    def score(self, row: int, epochs: int | None = None) -> float:
        """A configuration's score trained ``epochs`` epochs (default all): the mean over seeds of the best val
        macro-F1 within them; a seed's training that diverged before its first epoch counts as 0."""
        return float(self.score_by_epoch[row, (epochs or self.max_t) - 1])

    def test_score(self, row: int, epochs: int | None = None) -> float:
        """The mean over seeds of the test macro-F1 at each seed's best val epoch within ``epochs``."""
        return float(self.test_by_epoch[row, (epochs or self.max_t) - 1])

    @property
    def best_score(self) -> float:
        """The best configuration's score over full training: regret's zero."""
        return float(self.score_by_epoch[:, -1].max())


def _scores_by_epoch(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per configuration and epoch count: the mean over seeds of the best val so far, and of the test there."""
    val = np.nan_to_num(curves[..., VAL], nan=-np.inf)  # (configs, seeds, epochs)
    best_so_far = np.maximum.accumulate(val, axis=2)
    epochs = np.arange(val.shape[2])
    # The epoch of the best val so far; of equal bests the later, as platform/ranking keeps a trial's checkpoint.
    is_new_best = (val >= best_so_far) & np.isfinite(val)
    best_epoch = np.maximum.accumulate(np.where(is_new_best, epochs, 0), axis=2)
    test = np.take_along_axis(np.nan_to_num(curves[..., TEST], nan=0.0), best_epoch, axis=2)
    finite = np.isfinite(best_so_far)
    score = np.where(finite, best_so_far, 0.0).mean(axis=1)
    test_score = np.where(finite, test, 0.0).mean(axis=1)
    return score, test_score


def table_space(header: dict) -> SearchSpace:
    """The :class:`SearchSpace` of a table's ``space`` (the spec's YAML format), searched keys only."""
    from mritune.search.space_ray import convert_ray_space
    from mritune.search.space_yaml import parse_space

    return convert_ray_space(parse_space(header["space"]))


def _read_rows(path: Path) -> tuple[dict, list[dict]]:
    if not path.is_file():
        raise ValueError(f"{path}: no learning-curve table there (record one with benchmarks/curves/record.py)")
    header, rows = None, []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if entry.get("kind") == "header":
            header = entry
        else:
            rows.append(entry)
    if header is None or header.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a learning-curve table of format {FORMAT_VERSION} (no header line)")
    return header, rows
