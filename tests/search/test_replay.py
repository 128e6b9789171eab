"""The recorded-curves replay: reading a table, the nearest recorded configuration, scores and regret, and the two
replay backends (simulated event queue, real Ray Tune) agreeing on random search.

The tables here are written by the tests in the recorder's format over the quick spec's space, with curves from a
formula, so every expected value is computed independently of the code under test.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mritune.search.replay import RecordedCurves

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
QUICK_SPACE = yaml.safe_load((ROOT / "configs" / "classifier-quick.yaml").read_text())["search"]["space"]
EPOCHS = 4


def formula_curve(config: dict, seed: int, epochs: int = EPOCHS) -> list[list[float]]:
    """val macro-F1 rising to a plateau that peaks at learning_rate 1e-3; seed 1 a little noisier."""
    peak = 0.9 - 0.15 * abs(math.log10(config["learning_rate"]) + 3)
    rows = []
    for epoch in range(1, epochs + 1):
        val = peak * (1 - math.exp(-epoch / 1.5)) + (0.01 * ((-1) ** epoch) if seed else 0.0)
        rows.append([round(val, 4), round(1.0 - val, 4), round(val - 0.02, 4), 0.5 + 0.1 * epoch])
    return rows


def write_table(path: Path, configs: list[dict], seeds=(0, 1), epochs: int = EPOCHS, skip=()) -> Path:
    header = {"kind": "header", "format": 1, "task": "classifier", "space": QUICK_SPACE, "fixed": {},
              "data": {}, "dataset_fingerprint": "test", "epochs": epochs, "metrics": ["val_macro_f1", "val_loss",
              "test_macro_f1", "seconds"]}
    lines = [json.dumps(header)]
    for index, config in enumerate(configs):
        for seed in seeds:
            if (index, seed) not in skip:
                lines.append(json.dumps({"config_index": index, "seed": seed, "config": config,
                                         "curve": formula_curve(config, seed, epochs), "ending": "completed"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def quick_configs(count: int, seed: int = 0) -> list[dict]:
    from mritune.search.replay import table_space

    space = table_space({"space": QUICK_SPACE})
    rng = np.random.default_rng(seed)
    return [space.decode(u) for u in rng.random((count, space.dim))]


def test_nearest_configuration_scores_and_regret(tmp_path):
    configs = quick_configs(12)
    table = RecordedCurves.load(write_table(tmp_path / "t.jsonl", configs, skip={(3, 1)}))

    assert len(table.configs) == 11 and 3 not in table.config_indices  # config 3 lacks seed 1: left out
    row = table.config_indices.index(5)
    assert table.nearest(configs[5]) == row
    moved = {**configs[5], "dropout": min(0.6, configs[5]["dropout"] + 1e-4)}
    assert table.nearest(moved) == row
    expected = np.mean([max(e[0] for e in formula_curve(configs[5], s)[:2]) for s in (0, 1)])
    assert table.score(row, epochs=2) == pytest.approx(expected)
    assert table.curve(row, seed_slot=1).val.tolist() == [e[0] for e in formula_curve(configs[5], 1)]
    best = max(np.mean([max(e[0] for e in formula_curve(c, s)) for s in (0, 1)])
               for i, c in enumerate(configs) if i != 3)
    assert table.best_score == pytest.approx(best)


def test_a_diverged_recording_ends_its_curve(tmp_path):
    configs = quick_configs(3)
    path = write_table(tmp_path / "t.jsonl", configs)
    rows = path.read_text().splitlines()
    diverged = json.loads(rows[1])
    diverged["curve"] = diverged["curve"][:2]
    diverged["ending"] = "diverged: loss nan"
    path.write_text("\n".join([rows[0], json.dumps(diverged), *rows[2:]]) + "\n")

    table = RecordedCurves.load(path)
    assert table.curve(0, seed_slot=0).epochs == 2
    assert table.score(0) == pytest.approx(np.mean([formula_curve(configs[0], 0)[1][0],
                                                    max(e[0] for e in formula_curve(configs[0], 1))]))


@pytest.mark.parametrize("content, message", [("", "no header"), ('{"kind": "header", "format": 1}\n{bad', "not JSON")])
def test_a_file_that_is_not_a_table_is_refused(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        RecordedCurves.load(path)


def _search(table, method_name: str, seed: int, backend: str, budget_fte: int, tmp_path) -> dict:
    from study.run import run_method

    return run_method(table, method_name, seed, budget_fte=budget_fte, backend=backend, time_scale=0.05,
                      storage=str(tmp_path / "tune"))


def test_simulated_fifo_trains_every_trial_to_max_t_and_picks_the_best_seen(tmp_path):
    table = RecordedCurves.load(write_table(tmp_path / "t.jsonl", quick_configs(40)))
    result = _search(table, "random+fifo", 0, "simulated", 6, tmp_path)

    assert result["epochs"] == 6 * EPOCHS and result["trials"] >= 6
    final_regret = result["trace"][-1][2]
    assert 0.0 <= final_regret < table.best_score
    assert all(a[0] <= b[0] for a, b in zip(result["trace"], result["trace"][1:]))


def test_simulated_and_real_tune_replays_agree_on_random_search(local_ray, tmp_path):
    """Random search with FIFO through both backends: the n-th trial runs the same recorded configuration and
    seed, every trial both completed reports the same values, and the best of them is the same. (Which epochs
    land inside the budget depends on Tune's timing: trials start one by one while the first already reports.)"""
    table = RecordedCurves.load(write_table(tmp_path / "t.jsonl", quick_configs(40)))
    simulated = _search(table, "random+fifo", 3, "simulated", 5, tmp_path)
    tuned = _search(table, "random+fifo", 3, "tune", 5, tmp_path)

    assert tuned["epochs"] >= 5 * EPOCHS
    by_index = {trial[0]: trial for trial in simulated["trials_run"]}
    both = [trial for trial in tuned["trials_run"] if trial[0] in by_index]
    assert len(both) >= 4
    assert [trial[1] for trial in both] == [by_index[trial[0]][1] for trial in both]  # same recorded rows
    completed = [trial for trial in both if trial[2] == EPOCHS and by_index[trial[0]][2] == EPOCHS]
    assert completed
    assert [trial[3] for trial in completed] == [by_index[trial[0]][3] for trial in completed]  # same values
