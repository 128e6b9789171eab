"""The ``replay`` task: recorded learning curves as a registered mritune task, for searches of a thousand trials.

``benchmarks/scale.py`` runs ``mritune search`` with ``task: replay`` through the same ``run_search`` path as any
search (the spec schema, the searcher, ASHA, the trial workers, MLflow, checkpoints, the report), with only the
training replaced: a trial answers its config with the recorded curve of the nearest recorded configuration
(``mritune.search.replay``, the lead's table from ``benchmarks/curves/record.py``), one recorded seed chosen by the
config, and reports each epoch after its recorded seconds times ``MRITUNE_REPLAY_TIME_SCALE``, with a checkpoint
(``state.json``: the task, the epoch, its metrics) as the classifier does. What is left of a trial's time beside
the replayed seconds is the platform's.

Registered when imported; the driver and the trial workers import it through ``MRITUNE_TASK_PACKAGES=replay_task``
with this folder on ``PYTHONPATH`` (``trainables/tasks.py``). The table comes from ``MRITUNE_REPLAY_TABLE``.
Registration: the stand-in evaluator below reads the checkpoint's recorded test macro-F1 (there is no model to
evaluate), and ``scale.py`` turns registration off, so no pyfunc is logged.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mritune.trainables.checkpointing import stop_epoch
from mritune.trainables.classifier.config import ClassifierConfig
from mritune.trainables.reporting import EpochReport, TrainingResult
from mritune.trainables.tasks import Task, register_task

TABLE_ENV = "MRITUNE_REPLAY_TABLE"
TIME_SCALE_ENV = "MRITUNE_REPLAY_TIME_SCALE"
_TABLES: dict[str, Any] = {}  # path -> RecordedCurves, loaded once per process


@dataclass(frozen=True, kw_only=True)
class ReplayConfig(ClassifierConfig):
    """The recorded classifier's settings, validated as the classifier validates them, with the table's fixed
    values as defaults; nothing here changes a curve but the searched values, which pick the nearest recorded
    configuration."""

    backbone: str = "small_cnn"
    image_size: int = 32
    epochs: int = 16


def table():
    from mritune.search.replay import RecordedCurves

    path = os.environ.get(TABLE_ENV)
    if not path:
        raise ValueError(f"the replay task needs {TABLE_ENV}: the path of a recorded learning-curve table")
    if path not in _TABLES:
        _TABLES[path] = RecordedCurves.load(path)
    return _TABLES[path]


def train_replay(config: dict, data, report, *, resume_from: str | None = None, workdir: str | None = None,
                 evaluate_test: bool = True, until_epoch: int | None = None) -> TrainingResult:
    """Report the nearest recorded curve, epoch by epoch, each after its recorded seconds × the time scale."""
    settings = ReplayConfig.from_dict({k: v for k, v in config.items() if k != "seed"})
    last = stop_epoch(settings.epochs, until_epoch)
    recorded = table()
    searched = {p.name: getattr(settings, p.name) for p in recorded.space.params}
    row = recorded.nearest(searched)
    slot = zlib.crc32(json.dumps(searched, sort_keys=True).encode()) % len(recorded.seeds)
    curve = recorded.curve(row, slot)
    scale = float(os.environ.get(TIME_SCALE_ENV, "0.1"))
    first = 1 if resume_from is None else json.loads((Path(resume_from) / "state.json").read_text())["epoch"] + 1
    workdir = Path(workdir or tempfile.mkdtemp(prefix="replay-"))
    replayed = 0.0 if resume_from is None else json.loads((Path(resume_from) / "state.json").read_text())["replayed_s"]
    metrics: dict[str, float] = {}
    for epoch in range(first, min(last, curve.epochs) + 1):
        pause = float(curve.seconds[epoch - 1]) * scale
        time.sleep(pause)  # the recorded training's time, scaled: this benchmark's stand-in for training
        replayed += pause
        metrics = {"epoch": epoch, "val_macro_f1": float(curve.val[epoch - 1]),
                   "val_loss": float(curve.val_loss[epoch - 1]), "replayed_s": replayed, "replay_row": row}
        folder = workdir / f"epoch-{epoch}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "state.json").write_text(json.dumps({"task": "replay", "epoch": epoch, "metrics": metrics,
                                                       "replayed_s": replayed,
                                                       "test_macro_f1": float(curve.test[epoch - 1])}))
        report(EpochReport(epoch=epoch, metrics=metrics, checkpoint_dir=str(folder)))
    if curve.epochs < last:
        raise RuntimeError(f"the recorded training of row {row} diverged after epoch {curve.epochs}")
    return TrainingResult(metrics=metrics, model_path="", epochs_completed=last)


def evaluate_replay_checkpoint(folder, state, data, out_dir):
    """Stand-in evaluator: the recorded test macro-F1 at the checkpoint's epoch (no model exists to evaluate)."""
    from mritune.trainables.evaluation import Evaluation

    return Evaluation(metrics={"test_macro_f1": float(state["test_macro_f1"])}, artifacts={})


TASK = register_task(Task(
    name="replay",
    config_class=ReplayConfig,
    train="replay_task:train_replay",
    evaluate_checkpoint="replay_task:evaluate_replay_checkpoint",
    epoch_metrics={"val_macro_f1": "max", "val_loss": "min"},
    search_metric="val_macro_f1",
    gate_metric="test_macro_f1",
    gate_mode="max",
    progress_metrics=("val_loss", "val_macro_f1"),
    model_name="mritune-replay",
    model_files=("state.json",),
))
