"""Syne Tune 0.13's MOBSTER on the multi-fidelity objectives: the anchor for benchmarks/multifidelity.py.

Runs in its own environment (Syne Tune is not a mritune dependency; 0.13 is the last release with MOBSTER and
brings numpy 1.26)::

    python3 -m venv /tmp/synetune && /tmp/synetune/bin/pip install 'syne-tune[gpsearchers]==0.13'
    /tmp/synetune/bin/python benchmarks/multifidelity_synetune.py --seeds 10
    .venv/bin/python benchmarks/multifidelity.py --report-only     # tables with the anchor's rows

Syne Tune's scheduler is driven directly (ask/tell) by a small simulator of 4 workers that each train one epoch
per tick, the same ASHA settings (stopping type, levels 1/3/9), the same curves, noise and epoch budget; its rows
go to ``multifidelity_synetune.raw.json`` (read by the main report) as method ``synetune_mobster`` (the "wall time" there is simulator time, so only
the epochs columns compare).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curves import CURVE_FUNCTIONS, FUNCTIONS, curve, noise_rng  # noqa: E402

RAW = Path(__file__).resolve().parent / "results" / "multifidelity_synetune.raw.json"  # JSON lines, git-ignored
ASHA = {"max_t": 9, "grace_period": 1, "reduction_factor": 3}


def make_scheduler(function: str, seed: int):
    from syne_tune.config_space import uniform
    from syne_tune.optimizer.baselines import MOBSTER

    space = {f"x{i}": uniform(lo, hi) for i, (lo, hi) in enumerate(FUNCTIONS[function].bounds)}
    return MOBSTER(space, metric="loss", mode="min", resource_attr="epoch", type="stopping", random_seed=seed,
                   max_t=ASHA["max_t"], grace_period=ASHA["grace_period"],
                   reduction_factor=ASHA["reduction_factor"], search_options={"debug_log": False})


def run_one(function: str, seed: int, budget: int, workers: int) -> dict:
    from syne_tune.backend.trial_status import Trial

    scheduler = make_scheduler(function, seed)
    fn, max_t = FUNCTIONS[function], ASHA["max_t"]
    running: dict[int, tuple] = {}  # trial id -> (Trial, epoch reached, noise rng)
    epochs, best, start, next_id, trace = 0, float("inf"), time.perf_counter(), 0, []
    while epochs < budget:
        while len(running) < workers:
            suggestion = scheduler.suggest(next_id)
            trial = Trial(trial_id=next_id, config=suggestion.config, creation_time=None)
            scheduler.on_trial_add(trial)
            running[next_id] = (trial, 0, noise_rng(suggestion.config, seed))
            next_id += 1
        for trial_id in list(running):
            trial, epoch, rng = running[trial_id]
            epoch += 1
            result = {"loss": curve(function, trial.config, epoch, max_t, rng), "epoch": epoch}
            epochs += 1
            decision = scheduler.on_trial_result(trial, result)
            if epoch == max_t:
                best = min(best, fn(trial.config) - fn.optimum)
                scheduler.on_trial_complete(trial, result)
            trace.append((epochs, time.perf_counter() - start, best))
            if epoch == max_t or decision == "STOP":
                del running[trial_id]
            else:
                running[trial_id] = (trial, epoch, rng)
            if epochs >= budget:
                break
    return {"function": function, "method": "synetune_mobster", "seed": seed, "budget": budget,
            "workers": workers, "asha": ASHA, "seconds": time.perf_counter() - start, "trace": trace}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=270)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--functions", default=",".join(CURVE_FUNCTIONS))
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    for seed in range(args.seeds):
        for function in args.functions.split(","):
            row = run_one(function, seed, args.budget, args.workers)
            with RAW.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{function:10s} synetune_mobster seed {seed}: regret {row['trace'][-1][2]:.4g} "
                  f"in {row['seconds']:.1f}s", flush=True)


if __name__ == "__main__":
    main()
