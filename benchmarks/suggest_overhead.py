"""Time ``suggest()`` at 10, 25, 50, 100 and 200 observations (6-D Hartmann), mritune vs GPyOpt's defaults.

For ``mobster_*`` an observation is a rung result (Hartmann6 learning curves at ASHA's levels 1/3/9/27); its
hyperparameters are refitted every 5th suggestion, so the median times the posterior update and acquisition
search and the max a refit.

    python benchmarks/suggest_overhead.py                 # all searchers, 5 timed suggestions per size
    python benchmarks/suggest_overhead.py --sizes 100 --repeats 9 --methods gpyopt_kb,gpyopt_default

``gpyopt_default`` is ``GPyOpt.methods.BayesianOptimization`` with its defaults, one suggestion via
``suggest_next_locations`` on the same data: the baseline the issue measured at 3.2 s (100 observations, 6-D).
Times are wall-clock medians and process CPU medians; 3 of the 4 suggestions see 3 running trials.
Writes benchmarks/results/suggest_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from functions import FUNCTIONS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("gpyopt_kb", "gpyopt_cl", "gpyopt_lp", "bayesopt", "gpyopt_default", "mobster_joint", "mobster_per_rung")


def filled_searcher(method: str, n_obs: int, seed: int):
    from mritune.search.factory import build_searcher

    function = FUNCTIONS["hartmann6"]
    if method.startswith("mobster"):
        return filled_mobster(method.removeprefix("mobster_"), n_obs, seed)
    if method == "bayesopt":
        searcher = build_searcher("bayesopt", metric="f", mode="min", seed=seed)
    else:
        strategy = {"kb": "kriging_believer", "cl": "constant_liar", "lp": "local_penalization"}[method[-2:]]
        searcher = build_searcher("gpyopt", metric="f", mode="min", seed=seed, pending_strategy=strategy)
    searcher.set_search_properties(None, None, function.tune_space())
    rng = np.random.default_rng(seed)
    for i in range(n_obs):
        config = {f"x{j}": float(v) for j, v in enumerate(rng.random(6))}
        searcher.add_evaluated_point(config, function(config))
    return searcher


def add_rung_results(searcher, n_obs: int, rng) -> None:
    """Feed a MobsterSearch ``n_obs`` rung results as ASHA leaves them (2/3 of the trials stop at each rung), on
    Hartmann6 learning curves (learning_curves.py)."""
    from learning_curves import curve

    recorded, trial = 0, 0
    while recorded < n_obs:
        config = {f"x{j}": float(v) for j, v in enumerate(rng.random(6))}
        searcher._log.add_pending(f"r{trial}", config)
        for level in searcher.levels[:1 + int(rng.random() < 1 / 3) + int(rng.random() < 1 / 9)]:
            if recorded < n_obs:
                value = curve("hartmann6", config, level, 27, rng)
                searcher.on_trial_result(f"r{trial}", {"f": value, "training_iteration": level})
                recorded += 1
        searcher.on_trial_complete(f"r{trial}", None)
        trial += 1


def filled_mobster(model: str, n_obs: int, seed: int):
    """MobsterSearch holding ``n_obs`` rung observations spread as ASHA leaves them (levels 1, 3, 9, 27; 2/3 of
    the trials stop at each rung), on Hartmann6 learning curves (learning_curves.py)."""
    from mritune.search.factory import build_searcher

    searcher = build_searcher("mobster", metric="f", mode="min", seed=seed, model=model, max_t=27, grace_period=1,
                              reduction_factor=3)
    searcher.set_search_properties(None, None, FUNCTIONS["hartmann6"].tune_space())
    add_rung_results(searcher, n_obs, np.random.default_rng(seed))
    return searcher


def time_mritune(method: str, n_obs: int, repeats: int) -> tuple[list[float], list[float]]:
    searcher = filled_searcher(method, n_obs, seed=0)
    searcher._n_suggested = 10**6  # past the random initial design: every timed call fits the model
    searcher.suggest("warmup")  # first fit includes imports and a cold start
    walls, cpus = [], []
    for i in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        searcher.suggest(f"t{i}")
        walls.append(time.perf_counter() - wall), cpus.append(time.process_time() - cpu)
        if i % 4 == 3:  # keep at most 3 running trials, like 4 workers
            for trial_id in list(searcher._log.pending):
                searcher.on_trial_complete(trial_id, {"f": 0.0})
    return walls, cpus


def time_gpyopt_default(n_obs: int, repeats: int) -> tuple[list[float], list[float]]:
    import GPyOpt

    function = FUNCTIONS["hartmann6"]
    rng = np.random.default_rng(0)
    X = rng.random((n_obs, 6))
    Y = np.array([[function({f"x{j}": v for j, v in enumerate(x)})] for x in X])
    domain = [{"name": f"x{j}", "type": "continuous", "domain": (0, 1)} for j in range(6)]
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        GPyOpt.methods.BayesianOptimization(f=None, domain=domain, X=X, Y=Y).suggest_next_locations()
        walls.append(time.perf_counter() - wall), cpus.append(time.process_time() - cpu)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,25,50,100,200")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default=str(RESULTS / "suggest_overhead.json"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for method in args.methods.split(","):
        for n_obs in sizes:
            if method == "gpyopt_default":
                walls, cpus = time_gpyopt_default(n_obs, max(2, args.repeats // 2))
            else:
                walls, cpus = time_mritune(method, n_obs, args.repeats)
            rows.append({"method": method, "observations": n_obs, "wall_s": walls, "cpu_s": cpus})
            print(f"{method:15s} n={n_obs:4d}: median wall {np.median(walls):.3f}s cpu {np.median(cpus):.3f}s "
                  f"max wall {np.max(walls):.3f}s",
                  flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows))
    print("\n| method | " + " | ".join(f"n={n} wall (cpu) s" for n in sizes) + " |")
    print("|---" * (len(sizes) + 1) + "|")
    for method in args.methods.split(","):
        cells = [next(f"{np.median(r['wall_s']):.2f} ({np.median(r['cpu_s']):.2f})" for r in rows
                      if r["method"] == method and r["observations"] == n) for n in sizes]
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
