"""What the search buys, with statistical power: searchers x schedulers replayed on the recorded classifier table.

    python benchmarks/search_study.py --methods default,random+fifo,random+asha-g2r2 --seeds 0-29 \
        --budget-fte 100 --json benchmarks/results/search_study.json
    python benchmarks/search_study.py --methods all,asha-variants --seeds 0-29 --jobs 2 --json OUT   # the full grid
    python benchmarks/search_study.py --backend tune --methods random+asha-g2r2 --seeds 0-9 --budget-fte 30 \
        --json benchmarks/results/search_study_tune.json                                             # real Ray Tune
    python benchmarks/search_study.py --report benchmarks/results/search_study.json      # tables + figures again

Every (method, seed) is one search of ``WORKERS`` concurrent trials over the table ``--table`` (recorded by
``benchmarks/curves/record.py``) until the trials together trained ``--budget-fte`` full trainings' worth of
epochs (fte x max_t), on the simulated backend (``study/simulate.py``: an event queue in recorded seconds, Ray's
own scheduler objects) or through real Ray Tune (``study/tune_backend.py``). Methods are built from the quick spec
as ``mritune search`` builds them (``study/methods.py``) and, unless ``--continuous``, restricted to the recorded
configurations (each suggested once; ``restrict_to``). A seed pairs the methods: the same first points and the
same recorded seed for the n-th trial. Regret, score and the pick follow ``mritune.search.replay``'s definitions.

Rows are appended to ``<json>.raw.jsonl`` as runs finish (an interrupted study resumes; git-ignored); ``--json``
gets the summary (top-level ``"summary"``: method -> fte -> iqm_regret, ci95, seeds, epochs_to_0.01), the goals,
IQM regret curves, and the run settings; figures go to ``docs/img/search_study*.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as stdlib_platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study import stats  # noqa: E402
from study.methods import WORKERS, expand_methods, parse_method  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "benchmarks" / "curves" / "classifier_32px.jsonl"
FIGURES = ROOT / "docs" / "img"
REPORTED_BUDGETS = (10, 30, 100)


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


def run_one(task: tuple) -> dict:
    """One (method, seed) search; runs in a worker process of its own."""
    name, seed, args = task
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mritune.search.replay import RecordedCurves
    from study.run import run_method

    table = RecordedCurves.load(args["table"])
    restricted = not args["continuous"]
    started = time.perf_counter()
    result = run_method(table, name, seed, budget_fte=args["budget_fte"], backend=args["backend"],
                        restricted=restricted, time_scale=args["time_scale"])
    return {"method": name, "seed": seed, "backend": args["backend"], "budget_fte": args["budget_fte"],
            "restricted": restricted,
            "table_configs": len(table.configs), "wall_s": round(time.perf_counter() - started, 1), **result}


def run_key(row: dict) -> tuple:
    """What makes two rows the same run (a resumed study skips it; the summary reads only the current ones)."""
    return (row["method"], row["seed"], row["backend"], row["budget_fte"], row["table_configs"],
            row.get("restricted", True))


def read_rows(raw: Path) -> list[dict]:
    if not raw.exists():
        return []
    return [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]


def run_study(args, names: list[str], seeds: list[int], raw: Path, table) -> None:
    done = {run_key(row) for row in read_rows(raw)}
    settings = {"table": str(args.table), "budget_fte": args.budget_fte, "backend": args.backend,
                "time_scale": args.time_scale, "continuous": args.continuous}
    todo = [(name, seed, settings) for seed in seeds for name in names
            if (name, seed, args.backend, args.budget_fte, len(table.configs), not args.continuous) not in done]
    print(f"{len(todo)} runs to do ({len(done)} in {raw.name})", flush=True)
    jobs = 1 if args.backend == "tune" else args.jobs
    with ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else _Inline() as pool:
        for row in pool.map(run_one, todo):
            with raw.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            final = row["trace"][-1] if row["trace"] else None
            print(f"{row['method']} seed {row['seed']}: {row['trials']} trials, regret {final and final[2]:.4f}, "
                  f"searcher {row['searcher_s']} s, {row['wall_s']} s", flush=True)


class _Inline:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(function, items):
        return map(function, items)


def summarise(rows: list[dict], table, args, names: list[str]) -> dict:
    budgets = sorted({b for b in REPORTED_BUDGETS if b <= args.budget_fte} | {args.budget_fte})
    grid = np.unique(np.linspace(1, args.budget_fte * table.max_t, 101).round().astype(int))
    summary, curves, methods = {}, {}, {}
    for name in names:
        runs = [r for r in rows if run_key(r)[:1] == (name,) and
                run_key(r)[2:] == (args.backend, args.budget_fte, len(table.configs), not args.continuous)]
        if not runs:
            continue
        for run in runs:
            run["searcher_s"] = run["searcher_s"] or 0.0
        summary[name] = stats.summarise_method(runs, budgets=budgets, max_t=table.max_t, best_score=table.best_score)
        curves[name] = stats.regret_curve(runs, grid, table.best_score)
        methods[name] = parse_method(name).__dict__
    default = parse_method("default")
    random_asha = f"random+asha-g{default.grace_period}r{default.reduction_factor:g}"
    asha = {n for n in summary if methods[n]["scheduler"] == "asha"}
    return {
        "benchmark": "search_study", "backend": args.backend, "workers": WORKERS, "budget_fte": args.budget_fte,
        "restricted_to_recorded_configurations": not args.continuous,
        "table": {"path": str(Path(args.table).resolve().relative_to(ROOT)), "configs": len(table.configs),
                  "seeds": list(table.seeds), "max_t": table.max_t, "best_score": round(table.best_score, 5),
                  "dataset_fingerprint": table.header["dataset_fingerprint"]},
        "machine": f"{os.cpu_count()} CPUs, {stdlib_platform.machine()}",
        "command": "python benchmarks/search_study.py " + " ".join(sys.argv[1:]),
        "methods": methods, "summary": summary,
        "goals": stats.goals(summary, curves, max_t=table.max_t, asha_methods=asha, random_asha=random_asha),
        "by_budget": stats.best_by_budget(summary),
        "curves": curves,
    }


def markdown_table(result: dict) -> str:
    budgets = sorted({b for entry in result["summary"].values() for b in entry}, key=int)
    head = "| method | " + " | ".join(f"regret at {b} fte (IQM, 95% CI)" for b in budgets) + \
        f" | epochs to regret {stats.TARGET_REGRET} | test macro-F1 at {budgets[-1]} fte | searcher s/run |"
    lines = [head, "|---" * (len(budgets) + 4) + "|"]
    order = sorted(result["summary"], key=lambda m: result["summary"][m][budgets[-1]]["iqm_regret"])
    for name in order:
        entry = result["summary"][name]
        cells = [f"{entry[b]['iqm_regret']:.4f} [{entry[b]['ci95'][0]:.4f}, {entry[b]['ci95'][1]:.4f}]"
                 for b in budgets]
        reach = entry[budgets[-1]][f"epochs_to_{stats.TARGET_REGRET}"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'-' if reach is None else f'{reach:.0f}'} "
                     f"| {entry[budgets[-1]]['iqm_test_macro_f1']:.3f} | {entry[budgets[-1]]['searcher_s_per_run']} |")
    return "\n".join(lines)


def recommendation_table(result: dict) -> str:
    """Which method to use at which budget: the lowest IQM regret, and the methods statistically tied with it."""
    lines = ["| budget (fte) | lowest IQM regret | tied with it (95% intervals overlap) | random search among them? |",
             "|---|---|---|---|"]
    for budget, entry in result["by_budget"].items():
        tied = [name for name in entry["tied"] if name != entry["best"]]
        has_random = any(name.startswith("random") for name in [entry["best"], *tied])
        lines.append(f"| {budget} | {entry['best']} ({entry['iqm_regret']:.4f}) | {', '.join(tied) or '-'} "
                     f"| {'yes' if has_random else 'no'} |")
    return "\n".join(lines)


def plot(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    max_t = result["table"]["max_t"]
    # Many methods: the defaults' comparison in colour, the rest faint (their numbers are in the table).
    default = parse_method("default")
    shown = {"default", "random+fifo", f"random+asha-g{default.grace_period}r{default.reduction_factor:g}",
             *(entry["best"] for entry in result.get("by_budget", {}).values())}
    for name, curve in result["curves"].items():
        fte = np.array(curve["epochs"]) / max_t
        if name not in shown:
            axis.plot(fte, curve["iqm"], color="0.8", linewidth=0.7, zorder=1)
            continue
        axis.plot(fte, curve["iqm"], label=name, linewidth=2 if name in ("default", "random+fifo") else 1.2, zorder=3)
        axis.fill_between(fte, curve["low"], curve["high"], alpha=0.12, zorder=2)
    axis.set_yscale("symlog", linthresh=0.01)
    axis.set_xlabel("epochs used, in full trainings (fte)")
    axis.set_ylabel("regret: best table score - score of the pick (IQM, 95% CI)")
    counts = sorted({entry[max(entry, key=int)]["seeds"] for entry in result["summary"].values()})
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    axis.set_title(f"{result['backend']} replay, {result['workers']} workers, {seeds} seeds, "
                   f"{result['table']['configs']} recorded configurations")
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="default,random+fifo")
    parser.add_argument("--seeds", default="0-29", help="paired seeds: 0-29, or 0,3,5")
    parser.add_argument("--budget-fte", type=int, default=100)
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "search_study.json"))
    parser.add_argument("--table", default=str(TABLE))
    parser.add_argument("--backend", choices=("simulated", "tune"), default="simulated")
    parser.add_argument("--time-scale", type=float, default=0.1, help="tune backend: wall s per recorded s")
    parser.add_argument("--jobs", type=int, default=1, help="simulated backend: runs in parallel processes")
    parser.add_argument("--continuous", action="store_true",
                        help="searchers propose anywhere and get the nearest recording (default: they choose among "
                             "the recorded configurations, each once, as Syne Tune's restrict_configurations)")
    parser.add_argument("--report", metavar="JSON", help="print the table of a written study and redraw its figure")
    parser.add_argument("--summarise-only", action="store_true",
                        help="write the JSON and figure from the runs already in <json>.raw.jsonl, running nothing "
                             "(a study cut short: each method's entry says how many seeds it has)")
    args = parser.parse_args()
    if args.report:
        result = json.loads(Path(args.report).read_text())
        plot(result, FIGURES / f"{Path(args.report).stem}.png")
        print(markdown_table(result))
        print()
        print(recommendation_table(result))
        return
    try:
        names = expand_methods(args.methods)
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    from mritune.search.replay import RecordedCurves

    table = RecordedCurves.load(args.table)
    out = Path(args.json)
    raw = out.with_suffix(".raw.jsonl")
    if not args.summarise_only:
        run_study(args, names, seeds, raw, table)
    result = summarise(read_rows(raw), table, args, names)
    if not result["summary"]:
        raise SystemExit(f"error: {raw} holds no run of these methods with these settings")
    out.write_text(json.dumps(result, indent=1))
    plot(result, FIGURES / f"{out.stem}.png")
    print(markdown_table(result))
    print(json.dumps(result["goals"], indent=1))


if __name__ == "__main__":
    main()
