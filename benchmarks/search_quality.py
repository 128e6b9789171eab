"""Search quality of mritune's searchers against random search and Optuna TPE, through real Ray Tune.

    python benchmarks/search_quality.py --seeds 10 --evals 40 --workers 4
    python benchmarks/search_quality.py --functions branin --methods gpyopt_kb,random --seeds 2   # quick look
    # issue 25: background hyperparameter fits against inline ones, and bayes_opt before that issue
    python benchmarks/search_quality.py --evals 100 --seeds 3 \
        --methods gpyopt_kb,gpyopt_kb_inline,bayesopt,bayesopt_inline,bayesopt_v0 \
        --out benchmarks/results/search_quality_fits.jsonl

Each (seed, function, method) is one ``Tuner.fit`` of ``--evals`` trials, ``--workers`` at a time (the
``*_1w`` methods run one at a time). Runs are appended to benchmarks/results/search_quality.jsonl as they finish,
so a partial run is reportable: ``--report-only`` rebuilds the tables and PNG from that file.
Simple regret = best value found - f*. Tables: median [IQR] regret after all evaluations, and median number of
evaluations to reach the function's regret threshold (">N" when fewer than half the seeds got there).

``*_inline``: the searcher with ``model_fit="inline"`` (hyperparameters refitted inside suggest(); the default is a
background thread). ``bayesopt_v0``: ``BayesOptSearch`` as it was before issue 25 (its module read from git commit
``V0_COMMIT``), for the regret the bounded, background-fitted searchers must keep. The JSON and PNG are named after
``--out``.
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
# gpyopt_kb_std: kriging believer on plainly standardized targets, to show what the default log warp does.
METHODS = ("gpyopt_kb", "gpyopt_cl", "gpyopt_lp", "gpyopt_kb_1w", "gpyopt_kb_std", "bayesopt", "random",
           "optuna_tpe", "gpyopt_kb_inline", "bayesopt_inline", "bayesopt_v0")
V0_COMMIT = "6da005d"  # main before issue 25's searcher changes


def make_searcher(method: str, seed: int):
    if method == "optuna_tpe":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return OptunaSearch(metric="f", mode="min", sampler=optuna.samplers.TPESampler(seed=seed))
    from mritune.search.factory import build_searcher

    if method == "bayesopt_v0":
        return _v0_module("search/bayesopt_searcher.py").BayesOptSearch(metric="f", mode="min",
                                                                         random_state_seed=seed)
    fit = {"model_fit": "inline"} if method.endswith("_inline") else {}
    method = method.removesuffix("_inline")
    if method.startswith("gpyopt"):
        strategy = {"kb": "kriging_believer", "cl": "constant_liar", "lp": "local_penalization"}[method.split("_")[1]]
        transform = "standardize" if method.endswith("_std") else "log"
        return build_searcher("gpyopt", metric="f", mode="min", seed=seed, pending_strategy=strategy,
                              target_transform=transform, **fit)
    return build_searcher(method, metric="f", mode="min", seed=seed, **fit)


def _v0_module(path: str):
    """A searcher module as it was at ``V0_COMMIT`` (it imports today's searcher_base, whose API it used)."""
    import subprocess
    import types

    source = subprocess.run(["git", "show", f"{V0_COMMIT}:{path}"], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"v0_{Path(path).stem}")
    exec(compile(source, f"{V0_COMMIT}:{path}", "exec"), module.__dict__)  # noqa: S102 (our own history)
    return module


def objective(config: dict) -> None:
    from ray import tune

    tune.report({"f": FUNCTIONS[config["function"]](config)})


def run_one(function: str, method: str, seed: int, evals: int, workers: int, storage: str) -> dict:
    from ray import tune
    from ray.tune import Callback

    values: list[float] = []

    class CompletionOrder(Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            values.append(float(trial.last_result["f"]))

    concurrency = 1 if method.endswith("_1w") else workers
    tuner = tune.Tuner(
        tune.with_resources(objective, {"cpu": 0.5}),
        param_space={"function": function, **FUNCTIONS[function].tune_space()},
        tune_config=tune.TuneConfig(search_alg=make_searcher(method, seed), num_samples=evals,
                                    max_concurrent_trials=concurrency, reuse_actors=True),
        run_config=tune.RunConfig(name=f"{function}-{method}-{seed}", storage_path=storage, verbose=0,
                                  callbacks=[CompletionOrder()]),
    )
    start = time.perf_counter()
    tuner.fit()
    regrets = np.minimum.accumulate(np.array(values) - FUNCTIONS[function].optimum).tolist()
    return {"function": function, "method": method, "seed": seed, "workers": concurrency,
            "seconds": time.perf_counter() - start, "regret_curve": regrets}


def evals_to_threshold(curve: list[float], threshold: float) -> float:
    hits = [i + 1 for i, r in enumerate(curve) if r <= threshold]
    return float(hits[0]) if hits else float("inf")


def summarize(rows: list[dict]) -> str:
    functions = [f for f in FUNCTIONS if any(r["function"] == f for r in rows)]
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    lines = ["| method | " + " | ".join(f"{f} regret (median [IQR])" for f in functions) + " | "
             + " | ".join(f"{f} evals to ≤{FUNCTIONS[f].regret_threshold}" for f in functions) + " | seeds per function |",
             "|---" * (2 * len(functions) + 2) + "|"]
    for method in methods:
        regret_cells, eval_cells, seeds = [], [], []
        for function in functions:
            runs = [r for r in rows if r["function"] == function and r["method"] == method]
            seeds.append(str(len(runs)))
            finals = np.array([r["regret_curve"][-1] for r in runs])
            if not len(finals):
                regret_cells.append("–"), eval_cells.append("–")
                continue
            q1, med, q3 = np.percentile(finals, [25, 50, 75])
            regret_cells.append(f"{med:.3g} [{q1:.3g}, {q3:.3g}]")
            needed = np.median([evals_to_threshold(r["regret_curve"], FUNCTIONS[function].regret_threshold)
                                for r in runs])
            eval_cells.append(f"{needed:.0f}" if np.isfinite(needed) else f">{len(runs[0]['regret_curve'])}")
        lines.append(f"| {method} | " + " | ".join(regret_cells) + " | " + " | ".join(eval_cells)
                     + f" | {'/'.join(seeds)} |")
    return "\n".join(lines)


def ratio_table(rows: list[dict]) -> str:
    """Median-regret ratios the issue's goals are stated in, for every GPyOptSearch pending strategy."""
    def median(function: str, method: str) -> float:
        finals = [r["regret_curve"][-1] for r in rows if r["function"] == function and r["method"] == method]
        return float(np.median(finals)) if finals else float("nan")

    lines = ["| function | method | / random (goal ≤ 0.5) | / optuna_tpe (goal ≤ 1 on 3 of 4) "
             "| 4 workers / 1 worker (goal ≤ 1.5) |", "|---|---|---|---|---|"]
    for function in FUNCTIONS:
        for method in ("gpyopt_kb", "gpyopt_cl", "gpyopt_lp", "bayesopt"):
            value = median(function, method)
            if np.isnan(value):
                continue
            cells = [value / max(median(function, other), 1e-12) for other in ("random", "optuna_tpe")]
            # Only kriging believer has a 1-worker run; the others are compared against that same baseline.
            cells.append(value / max(median(function, "gpyopt_kb_1w"), 1e-12))
            lines.append(f"| {function} | {method} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    return "\n".join(lines)


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    functions = [f for f in FUNCTIONS if any(r["function"] == f for r in rows)]
    fig, axes = plt.subplots(1, len(functions), figsize=(5 * len(functions), 4), squeeze=False)
    for ax, function in zip(axes[0], functions):
        for method in METHODS:
            curves = [r["regret_curve"] for r in rows if r["function"] == function and r["method"] == method]
            if curves:
                length = min(len(c) for c in curves)
                median = np.median(np.array([c[:length] for c in curves]), axis=0)
                ax.plot(np.arange(1, length + 1), np.maximum(median, 1e-6), label=method)
        ax.set_yscale("log"), ax.set_title(function), ax.set_xlabel("evaluations"), ax.set_ylabel("median regret")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(jsonl: Path) -> None:
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    # A run interrupted (Ctrl-C) returns early with a short curve: leave it out of the comparison.
    full_length = max(len(r["regret_curve"]) for r in rows)
    rows = [r for r in rows if len(r["regret_curve"]) == full_length]
    print(summarize(rows), "\n")
    print(ratio_table(rows))
    jsonl.with_suffix(".json").write_text(json.dumps(rows))
    plot_curves(rows, jsonl.with_name(jsonl.stem + "_regret.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--evals", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default=str(RESULTS / "search_quality.jsonl"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    if not args.report_only:
        run_all(args, out)
    report(out)


def run_all(args: argparse.Namespace, out: Path) -> None:
    from tune_grid import run_grid

    functions = [f for f in args.functions.split(",") if f]
    methods = [m for m in args.methods.split(",") if m]
    for name in functions + methods:
        if name not in FUNCTIONS and name not in METHODS:
            raise SystemExit(f"error: unknown function or method {name!r}")
    run_grid(out, seeds=range(args.first_seed, args.first_seed + args.seeds), functions=functions, methods=methods,
             workers=args.workers,
             run_one=lambda function, method, seed, storage: run_one(function, method, seed, args.evals,
                                                                     args.workers, storage),
             describe=lambda row: f"regret {row['regret_curve'][-1]:.4g} in {row['seconds']:.1f}s")


if __name__ == "__main__":
    main()
