"""Multi-fidelity search under ASHA: MobsterSearch against random, GPyOptSearch and Optuna TPE (+ Syne Tune's MOBSTER).

    # the README's main study: real Ray Tune, 10 seeds x 4 functions x 4 methods (~40 min on the shared 2-core machine)
    python benchmarks/multifidelity.py --backend tune --seeds 10 --methods random,gpyopt,tpe,mobster_joint
    # the cheaper second view: Ray's ASHA rule without Tune's loop, both mobster models (~15 min here)
    python benchmarks/multifidelity.py --backend simulated --seeds 10
    python benchmarks/multifidelity.py --report-only                   # tables, JSON and PNGs from the raw rows

Objectives: ``learning_curves.py`` (learning curves whose full-budget value is Branin, Hartmann3, Hartmann6,
Levy4; crossing curves, noise shrinking with epochs). ``--backend tune``: each (seed, function, method) is one
``Tuner.fit`` with ``ASHAScheduler(max_t, grace_period, reduction_factor)``, 4 trials at a time (the searcher's
ConcurrencyLimiter), stopped when the trials together have trained ``--budget`` epochs (equal budgets).
``--backend simulated``: the same searchers, curves and budget, with Ray's ASHA decisions made by its own
``_Bracket`` code outside Tune (``asha_simulator.py``); random search gives identical regrets on both backends.
Regret after E epochs = f(x) - f* of the best config among the trials that reached max_t (its noise-free
full-budget value); the same against wall time. Tables: median [IQR] final regret, median epochs to the function's
target regret (">B" when fewer than half the seeds got there), the regret of what each searcher proposed, and the
issue's ratios. Rows are appended to ``benchmarks/results/multifidelity[_simulated].raw.json`` as runs finish;
``multifidelity.json`` (the committed summary) and ``docs/img/multifidelity_<backend>.png`` are rebuilt from them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curves import CURVE_FUNCTIONS, FUNCTIONS, TARGET_REGRET, curve, noise_rng  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "img"  # the README shows them
RAW = RESULTS / "multifidelity.raw.json"  # one JSON object per line (git-ignored)
RAW_SIMULATED = RESULTS / "multifidelity_simulated.raw.json"
METHODS = ("random", "gpyopt", "tpe", "mobster_joint", "mobster_per_rung")
# The anchor, run by multifidelity_synetune.py in Syne Tune's own environment; reported when its rows exist.
ANCHOR = "synetune_mobster"
ANCHOR_RAW = RESULTS / "multifidelity_synetune.raw.json"
ASHA = {"max_t": 9, "grace_period": 1, "reduction_factor": 3}  # levels 1, 3, 9


def make_searcher(method: str, seed: int, workers: int):
    from mritune.search.factory import build_searcher

    if method.startswith("mobster"):  # mobster_joint, mobster_per_rung; "_inline": hyperparameters fitted inline
        model = method.removeprefix("mobster_").removesuffix("_inline")
        fit = "inline" if method.endswith("_inline") else "background"
        return build_searcher("mobster", metric="loss", mode="min", seed=seed, max_concurrent=workers,
                              model=model, model_fit=fit, **ASHA)
    if method == "tpe":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    return build_searcher(method, metric="loss", mode="min", seed=seed, max_concurrent=workers)


def objective(config: dict) -> None:
    from ray import tune

    rng = noise_rng(config, config["seed"])
    for epoch in range(1, config["max_t"] + 1):
        tune.report({"loss": curve(config["function"], config, epoch, config["max_t"], rng)})


class _Trace:
    """Epochs consumed, wall time and the best full-budget config's regret, at every result Tune hands back."""

    def __init__(self, function: str, max_t: int) -> None:
        self.function, self.max_t = function, max_t
        self.epochs, self.start = 0, time.perf_counter()
        self.best = float("inf")
        self.points: list[tuple[int, float, float]] = []
        self.proposed: list[float] = []  # full-budget regret of every config proposed, whether ASHA kept it or not

    def on_result(self, config: dict, result: dict) -> None:
        self.epochs += 1
        fn = FUNCTIONS[self.function]
        if result.get("training_iteration") == 1:  # a new trial: how good is what the searcher proposed?
            self.proposed.append(fn(config) - fn.optimum)
        if result.get("training_iteration") == self.max_t:
            self.best = min(self.best, fn(config) - fn.optimum)
        self.points.append((self.epochs, time.perf_counter() - self.start, self.best))


def run_one(function: str, method: str, seed: int, budget: int, workers: int, storage: str) -> dict:
    from ray import tune
    from ray.tune import Callback
    from ray.tune.stopper import Stopper

    from mritune.search.factory import build_scheduler

    trace = _Trace(function, ASHA["max_t"])

    class Record(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            trace.on_result(trial.config, result)

    class EpochBudget(Stopper):
        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            return trace.epochs >= budget

    tuner = tune.Tuner(
        tune.with_resources(objective, {"cpu": 0.5}),
        param_space={"function": function, "seed": seed, "max_t": ASHA["max_t"], **FUNCTIONS[function].tune_space()},
        tune_config=tune.TuneConfig(search_alg=make_searcher(method, seed, workers), num_samples=10_000,
                                    reuse_actors=True, scheduler=build_scheduler("asha", metric="loss", mode="min",
                                                                                 **ASHA)),
        run_config=tune.RunConfig(name=f"{function}-{method}-{seed}", storage_path=storage, verbose=0,
                                  stop=EpochBudget(), callbacks=[Record()]),
    )
    tuner.fit()
    return {"function": function, "method": method, "seed": seed, "budget": budget, "workers": workers,
            "asha": ASHA, "seconds": time.perf_counter() - trace.start, "trace": trace.points, "proposed": trace.proposed}


def run_simulated(function: str, method: str, seed: int, budget: int, workers: int) -> dict:
    """The same searcher and curves, Ray's ASHA rule, no Tune loop (asha_simulator.py)."""
    from asha_simulator import simulate

    trace = _Trace(function, ASHA["max_t"])
    searcher = make_searcher(method, seed, workers)
    searcher.set_search_properties("loss", "min", FUNCTIONS[function].tune_space())
    rngs: dict[str, np.random.Generator] = {}

    def report(config: dict, epoch: int) -> float:
        key = json.dumps(config, sort_keys=True)
        rngs.setdefault(key, noise_rng(config, seed))
        return curve(function, config, epoch, ASHA["max_t"], rngs[key])

    seconds = simulate(searcher, report=report, budget=budget, workers=workers, on_result=trace.on_result, **ASHA)
    return {"function": function, "method": method, "seed": seed, "budget": budget, "workers": workers,
            "asha": ASHA, "seconds": seconds, "trace": trace.points, "proposed": trace.proposed}


def run_simulated_grid(args: argparse.Namespace, functions: list[str], methods: list[str]) -> None:
    done = set()
    if RAW_SIMULATED.exists():
        done = {(r["function"], r["method"], r["seed"])
                for r in map(json.loads, RAW_SIMULATED.read_text().splitlines())}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for function in functions:
            for method in methods:
                if (function, method, seed) not in done:
                    row = run_simulated(function, method, seed, args.budget, args.workers)
                    with RAW_SIMULATED.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(f"{function:10s} {method:17s} seed {seed}: regret {row['trace'][-1][2]:.4g} "
                          f"(simulated, searcher {row['seconds']:.1f}s)", flush=True)


# ------------------------------------------------------------------------------------------------ reporting


def regret_at(trace: list, epochs: int) -> float:
    """Regret once ``epochs`` epochs were consumed (inf before any trial reached max_t)."""
    index = np.searchsorted([p[0] for p in trace], epochs, side="right") - 1
    return trace[index][2] if index >= 0 else float("inf")


def epochs_to(trace: list, target: float) -> float:
    hits = [p[0] for p in trace if p[2] <= target]
    return float(hits[0]) if hits else float("inf")


def seconds_to(trace: list, target: float) -> float:
    hits = [p[1] for p in trace if p[2] <= target]
    return float(hits[0]) if hits else float("inf")


def summarize(rows: list[dict]) -> dict:
    """Per function and method: final regret quartiles, epochs and seconds to target (medians), seeds."""
    summary: dict = {"asha": ASHA, "budget_epochs": rows[0]["budget"], "workers": rows[0]["workers"],
                     "target_regret": TARGET_REGRET, "functions": {}}
    for function in CURVE_FUNCTIONS:
        per_method = {}
        for method in (*METHODS, ANCHOR):
            runs = [r for r in rows if r["function"] == function and r["method"] == method]
            if not runs:
                continue
            budget = runs[0]["budget"]
            finals = [regret_at(r["trace"], budget) for r in runs]
            per_method[method] = {
                "seeds": len(runs),
                "final_regret_quartiles": [float(v) for v in np.percentile(finals, [25, 50, 75])],
                "epochs_to_target_median": float(np.median([epochs_to(r["trace"], TARGET_REGRET[function])
                                                            for r in runs])),
                "seconds_to_target_median": float(np.median([seconds_to(r["trace"], TARGET_REGRET[function])
                                                             for r in runs])),
                "seconds_per_run_median": float(np.median([r["seconds"] for r in runs])),
            }
            proposed = [r["proposed"] for r in runs if r.get("proposed")]
            if proposed:
                # Past the initial random design: the regret of what the searcher proposed (median over its
                # proposals, then over seeds), and of its best proposal, whether or not ASHA let it finish.
                per_method[method]["proposed_regret_median"] = float(np.median([np.median(p[5:] or p)
                                                                                for p in proposed]))
                per_method[method]["best_proposed_regret_median"] = float(np.median([min(p) for p in proposed]))
        if per_method:
            summary["functions"][function] = per_method
    summary["goals"] = goal_ratios(summary)
    return summary


def goal_ratios(summary: dict) -> dict:
    """The issue's goals, per mobster model: epochs-to-target ratios and 'not worse than random at the end'."""
    goals = {}
    for model in ("mobster_joint", "mobster_per_rung"):
        per_function = {}
        for function, methods in summary["functions"].items():
            if model not in methods:
                continue
            ours = methods[model]["epochs_to_target_median"]
            cells = {f"vs_{other}": _ratio(ours, methods[other]["epochs_to_target_median"],
                                           summary["budget_epochs"])
                     for other in ("gpyopt", "random", "tpe", ANCHOR) if other in methods}
            if "random" in methods:
                cells["final_median_not_worse_than_random"] = (
                    methods[model]["final_regret_quartiles"][1] <= methods["random"]["final_regret_quartiles"][1])
            per_function[function] = cells
        if not per_function:  # this model was not run on this backend: no goal to judge (not vacuously met)
            continue
        met = [f for f, c in per_function.items()
               if _at_most(c.get("vs_gpyopt"), 0.6) and _at_most(c.get("vs_random"), 0.5)]
        goals[model] = {"per_function": per_function, "functions_meeting_ratio_goals": met,
                        "ratio_goal_met": len(met) >= 3,
                        "never_worse_than_random": all(c.get("final_median_not_worse_than_random", False)
                                                       for c in per_function.values()),
                        "functions_within_1_2x_of_synetune": [f for f, c in per_function.items()
                                                              if _at_most(c.get(f"vs_{ANCHOR}"), 1.2)]}
    return goals


def _at_most(ratio: float | None, goal: float) -> bool:
    return ratio is not None and ratio <= goal


def _ratio(ours: float, theirs: float, budget: int) -> float | None:
    """ours / theirs (medians of epochs to target); None when neither reached it, inf when only they did.

    When only we did, theirs is more than the budget, so ``ours / budget`` is an upper bound of the ratio.
    """
    if np.isinf(ours) and np.isinf(theirs):
        return None
    if np.isinf(theirs):
        return float(ours / budget)
    return float(ours / theirs)


def table(summary: dict) -> str:
    budget = summary["budget_epochs"]
    lines = ["| function | method | final regret median [IQR] | epochs to target | seconds to target "
             "| s per run | proposals' regret (median) | best proposal's regret |", "|---|---|---|---|---|---|---|---|"]
    for function, methods in summary["functions"].items():
        for method, cell in methods.items():
            q1, med, q3 = cell["final_regret_quartiles"]
            epochs = cell["epochs_to_target_median"]
            seconds = cell["seconds_to_target_median"]
            lines.append(f"| {function} (≤{TARGET_REGRET[function]}) | {method} | {med:.3g} [{q1:.3g}, {q3:.3g}] "
                         f"| {f'{epochs:.0f}' if np.isfinite(epochs) else f'>{budget}'} "
                         f"| {f'{seconds:.1f}' if np.isfinite(seconds) else '–'} "
                         f"| {cell['seconds_per_run_median']:.1f} | {_cell(cell, 'proposed_regret_median')} "
                         f"| {_cell(cell, 'best_proposed_regret_median')} |")
    return "\n".join(lines)


def readme_table(summary: dict) -> str:
    """The README's table: a row per method, per function 'final regret median [IQR] / epochs / s to target'."""
    budget, functions = summary["budget_epochs"], list(summary["functions"])
    header = " | ".join(f"{f}: final regret, median [IQR] / epochs / s to ≤{TARGET_REGRET[f]}" for f in functions)
    lines = [f"| method | {header} |", "|---" * (len(functions) + 1) + "|"]
    for method in (*METHODS, ANCHOR):
        cells = [summary["functions"][f].get(method) for f in functions]
        if not any(cells):
            continue
        seeds = max(c["seeds"] for c in cells if c)
        lines.append(f"| {method} ({seeds} seeds) | " + " | ".join(_readme_cell(c, budget, method != ANCHOR) for c in cells) + " |")
    return "\n".join(lines)


def _readme_cell(cell: dict | None, budget: int, seconds_comparable: bool) -> str:
    if cell is None:
        return "–"
    q1, med, q3 = cell["final_regret_quartiles"]
    epochs, seconds = cell["epochs_to_target_median"], cell["seconds_to_target_median"]
    shown = f"{seconds:.1f}" if np.isfinite(seconds) and seconds_comparable else "–"
    return f"{med:.3g} [{q1:.2g}, {q3:.2g}] / {f'{epochs:.0f}' if np.isfinite(epochs) else f'>{budget}'} / {shown}"


def _cell(cell: dict, key: str) -> str:
    return f"{cell[key]:.3g}" if key in cell else "–"


def plot(rows: list[dict], path: Path, time_label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    functions = [f for f in CURVE_FUNCTIONS if any(r["function"] == f for r in rows)]
    fig, axes = plt.subplots(2, len(functions), figsize=(4.5 * len(functions), 7), squeeze=False)
    for column, function in enumerate(functions):
        for method in (*METHODS, ANCHOR):
            runs = [r for r in rows if r["function"] == function and r["method"] == method]
            if not runs:
                continue
            budget = runs[0]["budget"]
            grid = np.linspace(1, budget, 100)
            curves = np.array([[regret_at(r["trace"], e) for e in grid] for r in runs])
            _band(axes[0][column], grid, curves, method)
            if method == ANCHOR:  # its time is another machine's Python in another process: not comparable
                continue
            seconds = np.linspace(0, max(r["seconds"] for r in runs), 100)
            by_time = np.array([[_regret_at_time(r["trace"], s) for s in seconds] for r in runs])
            _band(axes[1][column], seconds, by_time, method)
        axes[0][column].set_title(function)
        axes[0][column].set_xlabel("epochs consumed")
        axes[1][column].set_xlabel(time_label)
        for row in (0, 1):
            axes[row][column].set_yscale("log")
            axes[row][column].set_ylabel("regret (median, IQR)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _band(ax, x: np.ndarray, curves: np.ndarray, label: str) -> None:
    finite = np.where(np.isfinite(curves), curves, np.nan)
    q1, med, q3 = (np.nanpercentile(finite, q, axis=0) for q in (25, 50, 75))
    line, = ax.plot(x, np.maximum(med, 1e-4), label=label)
    ax.fill_between(x, np.maximum(q1, 1e-4), np.maximum(q3, 1e-4), color=line.get_color(), alpha=0.15)


def _regret_at_time(trace: list, seconds: float) -> float:
    index = np.searchsorted([p[1] for p in trace], seconds, side="right") - 1
    return trace[index][2] if index >= 0 else float("inf")


def report() -> None:
    """Tables, goals, JSON summary and PNG for each backend with rows.

    The Syne Tune anchor (run in the simulator, same ASHA levels and epoch budget) joins both: epochs to target
    mean the same on both backends; its seconds are another process's and are not compared.
    """
    sources = {"tune": (RAW, ANCHOR_RAW), "simulated": (RAW_SIMULATED, ANCHOR_RAW)}
    summaries = {}
    for backend, paths in sources.items():
        rows = [json.loads(line) for path in paths if path.exists()
                for line in path.read_text().splitlines() if line.strip()]
        if not rows or not paths[0].exists():  # the anchor alone is no study
            continue
        summaries[backend] = summarize(rows)
        print(f"## {backend}\n\n{table(summaries[backend])}\n\n{readme_table(summaries[backend])}\n")
        print(json.dumps(summaries[backend]["goals"], indent=1))
        plot(rows, FIGURES / f"multifidelity_{backend}.png",
             "wall time (s)" if backend == "tune" else "searcher compute time (s), simulated")
    (RESULTS / "multifidelity.json").write_text(json.dumps(summaries, indent=1))


def run_all(args: argparse.Namespace) -> None:
    from tune_grid import run_grid

    functions = [f for f in args.functions.split(",") if f]
    methods = [m for m in args.methods.split(",") if m]
    unknown = [n for n in functions + methods if n not in CURVE_FUNCTIONS and n not in METHODS]
    if unknown:
        raise SystemExit(f"error: unknown function or method {unknown[0]!r}")
    if args.backend == "simulated":
        run_simulated_grid(args, functions, methods)
        return
    run_grid(RAW, seeds=range(args.first_seed, args.first_seed + args.seeds), functions=functions,
             methods=methods, workers=args.workers,
             run_one=lambda function, method, seed, storage: run_one(function, method, seed, args.budget,
                                                                     args.workers, storage),
             describe=lambda row: f"regret {row['trace'][-1][2]:.4g} in {row['seconds']:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=270, help="epochs all trials of one run may train together")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--functions", default=",".join(CURVE_FUNCTIONS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--backend", choices=("tune", "simulated"), default="tune",
                        help="tune: real Ray Tune runs; simulated: Ray's ASHA rule without Tune (asha_simulator.py)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        run_all(args)
    report()


if __name__ == "__main__":
    main()
