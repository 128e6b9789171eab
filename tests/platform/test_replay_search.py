"""The replay task (benchmarks/replay_task.py) through `mritune search`: what benchmarks/scale.py runs a thousand of.

A small table in the recorder's format (written here, curves from a formula) and a search of six trials, two at a
time under ASHA, in a `mritune search` process of its own with the task named in MRITUNE_TASK_PACKAGES, as the
benchmark runs it; the trial runs must hold the recorded curves of their nearest recorded configurations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import yaml

from tests.mlflow_stores import sqlite_store
from tests.search.test_replay import EPOCHS, QUICK_SPACE, formula_curve, quick_configs, write_table

ROOT = Path(__file__).resolve().parents[2]


def test_a_replay_search_reports_the_nearest_recorded_curves(tmp_path):
    from mlflow.tracking import MlflowClient

    from mritune.search.replay import RecordedCurves

    table_file = write_table(tmp_path / "table.jsonl", quick_configs(16))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from scale import run_env, spec_dict

    spec = spec_dict(table=table_file, trials=6, concurrent=2, tracking_uri=sqlite_store(tmp_path / "mlruns.db"),
                     storage=tmp_path)
    assert spec["search"]["space"] == QUICK_SPACE and spec["scheduler"]["max_t"] == EPOCHS
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    env = {**run_env(table_file, time_scale=0.01), "MRITUNE_CACHE_DIR": str(tmp_path / "cache")}
    mritune = str(Path(sys.executable).with_name("mritune"))
    done = subprocess.run([mritune, "search", str(spec_file)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Registry:        nothing registered" not in done.stdout or "registry" in json.dumps(spec)

    table = RecordedCurves.load(table_file)
    client = MlflowClient(spec["tracking"]["uri"])
    experiment = client.get_experiment_by_name(spec["tracking"]["experiment"])
    runs = client.search_runs([experiment.experiment_id], "tags.`mritune.role` = 'trial'")
    assert len(runs) == 6 and {run.info.status for run in runs} <= {"FINISHED", "KILLED"}
    for run in runs:
        config = {p.name: _typed(run.data.params[p.name], p) for p in table.space.params}
        row = table.nearest(config)
        slot = zlib.crc32(json.dumps(config, sort_keys=True).encode()) % len(table.seeds)
        expected = [epoch[0] for epoch in formula_curve(table.configs[row], table.seeds[slot])]
        history = sorted(client.get_metric_history(run.info.run_id, "val_macro_f1"), key=lambda m: m.step)
        assert [m.value for m in history] == expected[:len(history)] and history, run.info.run_name
        assert run.data.metrics["replayed_s"] > 0
    assert (tmp_path / "ray_results").glob("*/report/report.html")


def _typed(text: str, param):
    if param.kind in ("float",):
        return float(text)
    if param.kind == "int":
        return int(float(text))
    for value in param.values:
        if str(value) == text:
            return value
    raise AssertionError(f"{param.name}={text!r} is not one of {param.values}")
