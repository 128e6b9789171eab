"""What the search buys: GPyOpt + ASHA against random search, FIFO and Optuna TPE at equal wall-clock budgets.

Every run is a real mritune search (embedded Ray, Ray Tune trials, an MLflow run per trial, the best checkpoint
registered and evaluated on the test split) of the classifier spec, with ``search.time_budget_s`` as the budget
and more trials than the budget can hold. Strategies run one after another within each seed, in an order that
rotates with the seed, so that drift of this machine's load spreads over all of them.

From each search's MLflow runs: the anytime curve (best validation macro-F1 reported so far against seconds
since the search run started), the time it first reached ``--target``, and the registered winner's test
macro-F1. Written: ``benchmarks/results/search_value.json`` (the summary the README's table is built from, plus
every curve) and ``docs/img/search_value.png`` (median and IQR of the anytime curves).

    python benchmarks/search_value.py [--seeds 5] [--budget 90] [--target 0.8] [--set KEY=VALUE ...]
    python benchmarks/search_value.py --table        # the README's table from the committed JSON
    python benchmarks/search_value.py --seeds 3 --strategies mobster+asha,gpyopt+asha,random+asha \
        --name search_value_mobster                 # the multi-fidelity searcher on the same workload
    python benchmarks/search_value.py --seeds 3 --budget 900 --strategies default,random+fifo \
        --set data.synthetic.size=32 --set trainable.image_size=32 --set scheduler.max_t=16 \
        --set search.max_concurrent=4 --set resources.cpu=0.5 --curves benchmarks/curves/classifier_32px.jsonl \
        --name search_live   # the study's live check
"""

from __future__ import annotations

import argparse
import json
import os
import platform as stdlib_platform
import statistics
import tempfile
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the search study's method names (study/methods.py)
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "docs" / "img" / "search_value.png"
# name -> (search.algorithm, scheduler.name)
STRATEGIES = {
    "gpyopt+asha": ("gpyopt", "asha"),
    "random+asha": ("random", "asha"),
    "gpyopt+fifo": ("gpyopt", "fifo"),
    "random+fifo": ("random", "fifo"),
    "tpe+asha": ("tpe", "asha"),
    "mobster+asha": ("mobster", "asha"),  # gets the spec's ASHA settings from the runner
}
METRIC = "val_macro_f1"


def run_one(strategy: str, seed: int, args, workdir: Path, curves=None) -> dict:
    from mritune.platform.spec.config import load_spec
    from mritune.platform.run.runner import run_search

    overrides = [
        *args.set, *strategy_overrides(strategy), f"search.seed={seed}", "search.num_samples=1000", f"search.time_budget_s={args.budget}",
        f"tracking.uri=sqlite:///{workdir}/mlruns.db", f"tracking.experiment=bench-{strategy}",
        f"registry.model_name=bench-{strategy.replace('+', '-')}-{seed}", f"storage_path={workdir}/ray_results",
        f"name=value-{strategy.replace('+', '-')}-{seed}",
    ]
    spec = load_spec(ROOT / "configs" / args.spec, overrides)
    started = time.perf_counter()
    outcome = run_search(spec)
    wall = time.perf_counter() - started
    curve, trials, epochs = anytime_curve(outcome)
    registration = outcome.registration
    return {
        "strategy": strategy, "seed": seed, "wall_s": round(wall, 1), "trials": trials, "epochs": epochs,
        "curve": curve,
        "best_val": curve[-1][1] if curve else None,
        "winner_test_macro_f1": registration.metrics.get("test_macro_f1") if registration else None,
        "majority_test_macro_f1": registration.metrics.get("test_macro_f1_majority") if registration else None,
        **found_configuration(outcome, curves),
    }


def found_configuration(outcome, curves) -> dict:
    """What the search settled on: the registered configuration, its re-runs' mean val and test macro-F1, and
    with a recorded table (``--curves``, a ``RecordedCurves``) its regret on it (the replay study's measure, by
    1-nearest-neighbour)."""
    chosen = outcome.reruns.chosen_config if outcome.reruns is not None else None
    if chosen is not None:
        config = dict(chosen.searched)
    elif outcome.table and outcome.table[0].get(outcome.metric) is not None:
        config = {key[len("config."):]: value for key, value in outcome.table[0].items() if key.startswith("config.")}
    else:
        return {}
    found = {"config": config,
             "rerun_val_mean": chosen.val_mean if chosen is not None else None,
             "rerun_test_mean": chosen.test_mean if chosen is not None else None}
    if curves is not None:
        row = curves.nearest(config)
        found["table_regret"] = round(curves.best_score - curves.score(row), 4)
        found["table_test"] = round(curves.test_score(row), 4)
    return found


def strategy_overrides(strategy: str) -> list[str]:
    """The spec overrides of a strategy: one of STRATEGIES, or a search study method (``study/methods.py``:
    ``default``, ``random+fifo``, ``gpyopt[acquisition=LCB]+asha-g1r3``) with its searcher, options and ASHA."""
    if strategy in STRATEGIES:
        algorithm, scheduler = STRATEGIES[strategy]
        options = "{n_initial_points: 4}" if algorithm in ("gpyopt", "tpe", "mobster") else "{}"
        return [f"search.algorithm={algorithm}", f"search.options={options}", f"scheduler.name={scheduler}"]
    from study.methods import parse_method

    method = parse_method(strategy)
    return [f"search.algorithm={method.searcher}", f"search.options={json.dumps(method.options)}",
            f"scheduler.name={method.scheduler}", f"scheduler.grace_period={method.grace_period}",
            f"scheduler.reduction_factor={method.reduction_factor}"]


def anytime_curve(outcome) -> tuple[list[tuple[float, float]], int, int]:
    """[(seconds since the search run started, best val_macro_f1 so far)] at every improvement; trials; epochs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(outcome.tracking_uri)
    start_ms = client.get_run(outcome.parent_run_id).info.start_time
    children = client.search_runs([outcome.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    points = []
    for run in children:
        points += [(m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, METRIC)]
    curve, best = [], None
    for timestamp, value in sorted(points):
        if best is None or value > best:
            best = value
            curve.append((round((timestamp - start_ms) / 1000.0, 2), round(value, 4)))
    return curve, len(children), len(points)


def time_to_target(curve: list, target: float) -> float | None:
    return next((seconds for seconds, value in curve if value >= target), None)


def best_at(curve: list, seconds: float) -> float | None:
    values = [value for t, value in curve if t <= seconds]
    return values[-1] if values else None


def quartiles(values: list[float]) -> dict | None:
    if not values:
        return None
    if len(values) == 1:
        return {"median": values[0], "q1": values[0], "q3": values[0]}
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": round(median, 4), "q1": round(q1, 4), "q3": round(q3, 4)}


def summarise(runs: list[dict], args) -> dict:
    summary = {}
    for strategy in dict.fromkeys([*STRATEGIES, *(run["strategy"] for run in runs)]):
        mine = [run for run in runs if run["strategy"] == strategy]
        if not mine:
            continue
        # A run that never reached the target counts as the whole budget (censored): medians stay comparable.
        times = [time_to_target(run["curve"], args.target) for run in mine]
        summary[strategy] = {
            "runs": len(mine),
            "reached_target": sum(t is not None for t in times),
            "time_to_target_s": quartiles([t if t is not None else float(args.budget) for t in times]),
            "best_val_macro_f1": quartiles([run["best_val"] for run in mine if run["best_val"] is not None]),
            "winner_test_macro_f1": quartiles([run["winner_test_macro_f1"] for run in mine
                                               if run["winner_test_macro_f1"] is not None]),
            "trials": quartiles([float(run["trials"]) for run in mine]),
            "epochs": quartiles([float(run["epochs"]) for run in mine]),
            "rerun_val_mean": quartiles([run["rerun_val_mean"] for run in mine if run.get("rerun_val_mean") is not None]),
            "table_regret": quartiles([run["table_regret"] for run in mine if run.get("table_regret") is not None]),
        }
    base = summary.get("random+fifo", {}).get("time_to_target_s")
    for entry in summary.values():
        mine = entry["time_to_target_s"]
        entry["time_to_target_vs_random_fifo"] = (round(mine["median"] / base["median"], 3)
                                                  if base and mine and base["median"] else None)
    return summary


def markdown_table(result: dict) -> str:
    """The README's table: time to the target and the winners' test macro-F1, medians with IQR, over the seeds."""
    def cell(q, fmt):
        return "-" if not q else f"{q['median']:{fmt}} ({q['q1']:{fmt}}–{q['q3']:{fmt}})"

    with_table = any(entry.get("table_regret") for entry in result["summary"].values())
    extra = " re-runs' val mean | regret on the recorded table |" if with_table else ""
    lines = [f"| strategy | reached {result['target_val_macro_f1']} val macro-F1 | time to it, s | × random+FIFO's "
             f"| best val macro-F1 | winner's test macro-F1 | trials | epochs |{extra}",
             "|---|---|---|---|---|---|---|---|" + ("---|---|" if with_table else "")]
    for name, entry in result["summary"].items():
        ratio = entry["time_to_target_vs_random_fifo"]
        row = (f"| {name} | {entry['reached_target']}/{entry['runs']} | {cell(entry['time_to_target_s'], '.0f')} "
               f"| {'-' if ratio is None else f'{ratio:.2f}'} | {cell(entry['best_val_macro_f1'], '.3f')} "
               f"| {cell(entry['winner_test_macro_f1'], '.3f')} | {cell(entry['trials'], '.0f')} "
               f"| {cell(entry['epochs'], '.0f')} |")
        if with_table:
            row += f" {cell(entry.get('rerun_val_mean'), '.3f')} | {cell(entry.get('table_regret'), '.3f')} |"
        lines.append(row)
    return "\n".join(lines)


def plot(runs: list[dict], args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.linspace(0, args.budget, 61)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for strategy in dict.fromkeys(run["strategy"] for run in runs):
        curves = [[best_at(run["curve"], t) for t in grid] for run in runs if run["strategy"] == strategy]
        if not curves:
            continue
        values = np.array([[np.nan if v is None else v for v in curve] for curve in curves], dtype=float)
        with np.errstate(all="ignore"):
            median = np.nanmedian(values, axis=0)
            q1, q3 = np.nanpercentile(values, 25, axis=0), np.nanpercentile(values, 75, axis=0)
        axis.plot(grid, median, label=strategy)
        axis.fill_between(grid, q1, q3, alpha=0.15)
    axis.axhline(args.target, color="grey", linestyle=":", label=f"target {args.target}")
    axis.set_xlabel("wall seconds since the search started")
    axis.set_ylabel(f"best {METRIC} so far (median, IQR)")
    axis.set_title(f"{args.seeds} seeds, {args.budget:.0f} s budget, 2-core CPU")
    axis.legend(fontsize=8)
    figure.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(FIGURE.with_name(f"{args.name}.png"), dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=90.0, help="wall seconds per search")
    parser.add_argument("--target", type=float, default=0.8, help="validation macro-F1 to reach")
    parser.add_argument("--table", action="store_true", help="print the table of the saved JSON and stop")
    parser.add_argument("--spec", default="classifier-quick.yaml")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--set", action="append", default=[], help="spec override, as mritune search --set")
    parser.add_argument("--curves", default=None,
                        help="a recorded table (benchmarks/curves/*.jsonl): also report the found configuration's "
                             "regret on it, as the search study measures it")
    parser.add_argument("--name", default="search_value",
                        help="results/<name>.json and docs/img/<name>.png (another name keeps the README's study)")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads((RESULTS / f"{args.name}.json").read_text())))
        return
    chosen = list(dict.fromkeys(args.strategies.split(",")))
    try:
        for strategy in chosen:
            strategy_overrides(strategy)
    except ValueError as exc:
        raise SystemExit(f"error: unknown strategy: {exc}") from None
    if args.seeds < 1:
        raise SystemExit("error: --seeds must be >= 1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    curves = None
    if args.curves:
        from mritune.search.replay import RecordedCurves

        curves = RecordedCurves.load(args.curves)  # once, before the first search: a bad table fails at once
    runs = []
    with tempfile.TemporaryDirectory(prefix="mritune-search-value-") as tmp:
        for seed in range(args.seeds):
            order = chosen[seed % len(chosen):] + chosen[: seed % len(chosen)]
            for strategy in order:
                run = run_one(strategy, seed, args, Path(tmp), curves)
                print(json.dumps({k: v for k, v in run.items() if k != "curve"}), flush=True)
                runs.append(run)
                result = write_result(runs, args)  # after every run: an interrupted study is still reportable
    plot(runs, args)
    print(markdown_table(result))


def write_result(runs: list[dict], args) -> dict:
    result = {
        "benchmark": "search_value", "spec": args.spec, "overrides": args.set, "budget_s": args.budget,
        "target_val_macro_f1": args.target, "seeds": args.seeds, "runs_done": len(runs),
        "machine": f"{os.cpu_count()} CPUs, {stdlib_platform.machine()}", "summary": summarise(runs, args),
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
