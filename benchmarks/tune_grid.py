"""A grid of cheap Ray Tune runs (seed × function × method) on one local Ray, appended to a JSON-lines file.

Shared by search_quality.py and multifidelity.py: Tune's result loggers and console reporter are off (set before
Ray is imported), one ``ray.init`` serves every run, and cells already in the file are skipped, so an interrupted
study resumes where it stopped and a partial one is reportable.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable


def run_grid(out: Path, *, seeds: range, functions: list[str], methods: list[str], workers: int,
             run_one: Callable[[str, str, int, str], dict], describe: Callable[[dict], str]) -> None:
    """``run_one(function, method, seed, storage_path) -> row`` for every missing cell, seed-major; one line each."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "600")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(workers))
    import ray

    done = set()
    if out.exists():
        done = {(r["function"], r["method"], r["seed"]) for r in map(json.loads, out.read_text().splitlines())}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=True, logging_level="ERROR")
    try:
        with tempfile.TemporaryDirectory(prefix="mritune-bench-") as storage:
            for seed in seeds:
                for function in functions:
                    for method in methods:
                        if (function, method, seed) in done:
                            continue
                        row = run_one(function, method, seed, storage)
                        with out.open("a") as fh:
                            fh.write(json.dumps(row) + "\n")
                        print(f"{function:10s} {method:17s} seed {seed}: {describe(row)}", flush=True)
    finally:
        ray.shutdown()
