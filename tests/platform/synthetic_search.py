"""A finished search of many trials written straight into a real MLflow store: what the report reads at scale.

``synthetic_search(folder, trials=1000)`` writes, into the SQLite store ``folder/mlruns.db`` (or another tracking
URI), one parent run and ``trials`` trial runs as mritune's runner and trial observer leave them (the tags the
report reads, the searched values as params, the search metric at every epoch with its time), and the search
folder ``folder/<name>`` with its ``mritune_search.json``, so ``write_search_report`` and ``mritune report`` draw
it. The trials follow ASHA on 16 worker slots (levels 1, 3, 9: two in three stop at each rung; a few fail), with
learning curves whose level depends on the config, so the top trials are a small, real minority.

Shared by ``tests/platform/test_scale_views.py`` and ``benchmarks/report_scale.py``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.mlflow_stores import sqlite_store

SLOTS = 16
EPOCH_S = 4.0  # simulated seconds per epoch


@dataclass(frozen=True)
class SyntheticSearch:
    experiment_path: Path
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    trials: int


def synthetic_spec(folder: Path, *, trials: int, tracking_uri: str):
    from mritune.platform.spec.config import parse_spec

    raw = {
        "name": "scale",
        "task": "classifier",
        "data": {"synthetic": {"n": 200, "size": 32, "seed": 0}},
        "search": {"algorithm": "gpyopt", "num_samples": trials, "max_concurrent": SLOTS, "seed": 0,
                   "space": {"learning_rate": {"loguniform": [1e-4, 3e-2]}, "dense_units": {"choice": [32, 64, 128]},
                             "dropout": {"uniform": [0.0, 0.6]}, "class_weighting": {"choice": ["none", "balanced"]},
                             "batch_size": {"choice": [16, 32, 64]}, "l2": {"loguniform": [1e-6, 1e-2]}}},
        "scheduler": {"name": "asha", "max_t": 9, "grace_period": 1, "reduction_factor": 3},
        "resources": {"cpu": 0.125, "gpu": 0},
        "tracking": {"uri": tracking_uri, "experiment": "scale"},
        "registry": {"enabled": False},
        "storage_path": str(folder / "ray_results"),
        "trainable": {"backbone": "small_cnn", "image_size": 32},
    }
    return parse_spec(raw)


def synthetic_search(folder: Path, *, trials: int = 1000, tracking_uri: str | None = None,
                     seed: int = 0) -> SyntheticSearch:
    """Write the search; returns where it is. About 30 ms of MLflow calls per trial on SQLite."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from mritune.platform.spec.search_folder import STATE_FILE
    from mritune.platform.tracking.tags import TRIAL_ID_TAG, TRIAL_NUMBER_TAG, TRIAL_STARTED_TAG

    folder.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or sqlite_store(folder / "mlruns.db")
    spec = synthetic_spec(folder, trials=trials, tracking_uri=uri)
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(f"scale-{time.time_ns()}")
    origin_ms = int(time.time() * 1000) - int(trials / SLOTS * 3 * EPOCH_S * 1000)
    parent = client.create_run(experiment_id, start_time=origin_ms, tags={"mlflow.runName": "scale"})
    rng = np.random.default_rng(seed)
    slot_free_at = [0.0] * SLOTS
    for number in range(1, trials + 1):
        config = _config(rng)
        epochs, failed = _epochs(rng)
        slot = int(np.argmin(slot_free_at))
        started = slot_free_at[slot] + float(rng.uniform(0.2, 1.0))
        curve = _curve(config, epochs, rng)
        ended = started + max(epochs, 0.5) * EPOCH_S  # a trial that failed before its first epoch ran briefly
        slot_free_at[slot] = ended
        trial_id = f"scale_{number:05d}"
        tags = {"mlflow.parentRunId": parent.info.run_id, TRIAL_ID_TAG: trial_id, TRIAL_NUMBER_TAG: str(number),
                TRIAL_STARTED_TAG: str(origin_ms / 1000 + started), "mlflow.runName": f"#{number}"}
        if not failed and epochs < 9:
            tags["stopped_by"] = "asha"
        run = client.create_run(experiment_id, start_time=int(origin_ms + started * 1000), tags=tags)
        stamp = [int(origin_ms + (started + (epoch + 1) * EPOCH_S) * 1000) for epoch in range(epochs)]
        client.log_batch(run.info.run_id,
                         metrics=[Metric(spec.metric, value, stamp[i], i + 1) for i, value in enumerate(curve)],
                         params=[Param(key, str(value)) for key, value in config.items()],
                         tags=[RunTag("mritune.search", spec.name)])
        status = "FAILED" if failed else ("KILLED" if epochs < 9 else "FINISHED")
        client.set_terminated(run.info.run_id, status=status, end_time=int(origin_ms + ended * 1000))
    client.set_terminated(parent.info.run_id, "FINISHED", end_time=int(origin_ms + max(slot_free_at) * 1000))
    experiment_path = folder / "ray_results" / "scale-synthetic"
    experiment_path.mkdir(parents=True, exist_ok=True)
    state = {"spec": spec.model_dump(mode="json"), "tracking_uri": uri, "experiment_id": experiment_id,
             "parent_run_id": parent.info.run_id}
    (experiment_path / STATE_FILE).write_text(json.dumps(state))
    return SyntheticSearch(experiment_path=experiment_path, tracking_uri=uri, experiment_id=experiment_id,
                           parent_run_id=parent.info.run_id, trials=trials)


def _config(rng: np.random.Generator) -> dict:
    return {"learning_rate": float(10 ** rng.uniform(-4, math.log10(3e-2))),
            "dense_units": int(rng.choice([32, 64, 128])), "dropout": float(rng.uniform(0, 0.6)),
            "class_weighting": str(rng.choice(["none", "balanced"])), "batch_size": int(rng.choice([16, 32, 64])),
            "l2": float(10 ** rng.uniform(-6, -2))}


def _epochs(rng: np.random.Generator) -> tuple[int, bool]:
    """Epochs run under ASHA (levels 1, 3, 9, reduction 3) and whether the trial failed (1 in 50)."""
    if rng.random() < 0.02:
        return int(rng.integers(0, 3)), True
    if rng.random() < 2 / 3:
        return 1, False
    return (3, False) if rng.random() < 2 / 3 else (9, False)


def _curve(config: dict, epochs: int, rng: np.random.Generator) -> list[float]:
    """val_macro_f1 by epoch: a ceiling set by the learning rate and dropout, approached at a config's pace."""
    lr_fit = math.exp(-((math.log10(config["learning_rate"]) + 3.0) ** 2) / 0.5)
    ceiling = 0.3 + 0.6 * lr_fit * (1 - 0.8 * max(0.0, config["dropout"] - 0.3))
    pace = 0.4 + 0.2 * (config["batch_size"] == 16)
    return [float(np.clip(ceiling * (1 - math.exp(-pace * epoch)) + rng.normal(0, 0.015), 0, 1))
            for epoch in range(1, epochs + 1)]
