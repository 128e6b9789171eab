"""The winner's curse on the quick workload, and whether the re-runs' interval holds what fresh seeds do.

Each run is a real mritune search (embedded Ray, Ray Tune trials, MLflow, the registry) of the quick workload
(``mritune quickstart --fast``'s classifier search: 960 synthetic images at 32 px, 8 GPyOpt+ASHA trials of up to
8 epochs, the six-hyperparameter space of configs/classifier-quick.yaml) with the spec's re-runs before
registering (``promotion: {rerun_top_k: 3, rerun_seeds: 3}``), one search per seed. From each search:

- the winner's curse: the search's best validation macro-F1 (its rank-1 trial) against the mean validation and
  test macro-F1 of the same configuration's re-runs on new seeds, and the test macro-F1 of the trial's own best
  checkpoint, the single number mritune registered before re-runs (read here for the comparison only);
- whether the re-runs changed which configuration is registered;
- reproducibility: the registered configuration trained on 10 further fresh seeds (as the re-runs are trained,
  ``rerun.train_on_seeds``) and how many of their test macro-F1 scores lie inside the registered 95% interval
  (the issue's goal: at least 8 of 10).

Written: ``benchmarks/results/winners_curse.json`` (after every search: an interrupted study is still reportable)
and ``docs/img/winners_curse.png``.

    python benchmarks/winners_curse.py [--searches 5] [--fresh-seeds 10] [--resume]
    python benchmarks/winners_curse.py --table        # the README's figures from the committed JSON
    python benchmarks/winners_curse.py --plot         # the figure again from the committed JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform as stdlib_platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "winners_curse.json"
FIGURE = ROOT / "docs" / "img" / "winners_curse.png"
FRESH_SALT = 1022  # fresh seeds: drawn apart from the re-runs' (platform/registry/rerun.py's salt is 22)


def quick_overrides(seed: int, workdir: Path, args) -> list[str]:
    from mritune.platform.run.quickstart import FAST_OVERRIDES

    fast = [o for o in FAST_OVERRIDES["classifier-quick.yaml"] if not o.startswith("promotion.")]
    return [*fast, f"promotion.rerun_top_k={args.top_k}", f"promotion.rerun_seeds={args.rerun_seeds}",
            f"search.seed={seed}", f"tracking.uri=sqlite:///{workdir}/mlruns.db", "tracking.experiment=curse",
            f"registry.model_name=curse-{seed}", f"storage_path={workdir}/ray_results", f"name=curse-{seed}", *args.set]


def run_one(seed: int, args, workdir: Path) -> dict:
    from mritune.platform.spec.config import load_spec
    from mritune.platform.run.runner import load_data, run_search

    spec = load_spec(ROOT / "configs" / "classifier-quick.yaml", quick_overrides(seed, workdir, args))
    started = time.perf_counter()
    outcome = run_search(spec)
    search_s = time.perf_counter() - started
    summary = outcome.reruns
    winner, chosen = summary.configs[0], summary.chosen_config
    dataset = load_data(spec)
    fresh, fresh_s = fresh_seed_scores(spec, dataset, outcome, args)
    interval = summary.interval
    inside = sum(interval.low <= score <= interval.high for score in fresh)
    return {
        "seed": seed, "search_s": round(search_s, 1), "rerun_s": round(summary.seconds, 1),
        "fresh_s": round(fresh_s, 1), "rerun_seeds": list(summary.seeds),
        "configs": [{"rank": c.rank, "trial_id": c.trial_id, "search_val": c.trial_value, "epoch": c.epoch,
                     "searched": c.searched, "val": [r.val for r in c.results], "test": [r.test for r in c.results],
                     "val_mean": c.val_mean, "test_mean": c.test_mean,
                     "interval": None if c.interval is None else [c.interval.mean, c.interval.low, c.interval.high]}
                    for c in summary.configs],
        "winner": {"trial_id": winner.trial_id, "best_val": winner.trial_value,
                   "rerun_val_mean": winner.val_mean, "rerun_test_mean": winner.test_mean,
                   "val_gap": winner.trial_value - winner.val_mean, "test_gap": winner.trial_value - winner.test_mean,
                   "own_checkpoint_test": own_checkpoint_test(outcome, dataset)},
        "changed_winner": summary.changed_winner,
        "registered": {"trial_id": chosen.trial_id, "rank": chosen.rank, "val_mean": chosen.val_mean,
                       "interval": [interval.mean, interval.low, interval.high],
                       "registered_seed": summary.registered_seed, "alias": outcome.registration.alias},
        "fresh": {"seeds": args.fresh_seeds, "test": fresh, "inside": inside,
                  "mean": statistics.fmean(fresh), "mean_inside": interval.low <= statistics.fmean(fresh) <= interval.high},
    }


def fresh_seed_scores(spec, dataset, outcome, args) -> tuple[list[float], float]:
    """The registered configuration trained on ``--fresh-seeds`` new seeds to its epoch: their test macro-F1."""
    from mritune.platform.tracking.ranking import TrialScore
    from mritune.platform.registry.rerun import rerun_seeds, train_on_seeds
    from mritune.platform.infra.storage import parse_location

    summary = outcome.reruns
    chosen = summary.chosen_config
    state = json.loads((Path(summary.registered.checkpoint) / "state.json").read_text())
    trial = TrialScore(trial_id=chosen.trial_id, status="OK", epochs=chosen.epoch, value=chosen.trial_value,
                       epoch=chosen.epoch, config=dict(state["config"]))
    seeds = rerun_seeds(args.fresh_seeds, search_seed=spec.search.seed, salt=FRESH_SALT,
                        avoid={*summary.seeds, int(state["config"].get("seed", 0)), 0})
    started = time.perf_counter()
    results = train_on_seeds(spec=spec, dataset=dataset, jobs=[(trial, seed) for seed in seeds], indices=None,
                             destination=parse_location(outcome.experiment_path).child("fresh"))
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"fresh-seed training failed: {failed[0].error}")
    return [r.test for r in results], time.perf_counter() - started


def own_checkpoint_test(outcome, dataset) -> float:
    """Test macro-F1 of the rank-1 trial's own best checkpoint: what mritune registered before re-runs."""
    from mritune.trainables.evaluation import evaluate_checkpoint

    top = outcome.table[0]
    states = Path(outcome.experiment_path).glob(f"*{top['trial_id']}*/checkpoint_*/state.json")
    folder = next(p.parent for p in states if json.loads(p.read_text())["epoch"] == top["best_epoch"])
    with tempfile.TemporaryDirectory() as out:
        return float(evaluate_checkpoint(folder, dataset, out_dir=out).metrics["test_macro_f1"])


def aggregate(searches: list[dict]) -> dict:
    if not searches:
        return {}
    def stats(values):
        return {"mean": round(statistics.fmean(values), 4), "median": round(statistics.median(values), 4),
                "min": round(min(values), 4), "max": round(max(values), 4)}

    fresh = sum(len(s["fresh"]["test"]) for s in searches)
    inside = sum(s["fresh"]["inside"] for s in searches)
    widths = [s["registered"]["interval"][2] - s["registered"]["interval"][1] for s in searches]
    return {
        "searches": len(searches),
        "winner_val_minus_rerun_val_mean": stats([s["winner"]["val_gap"] for s in searches]),
        "winner_val_minus_rerun_test_mean": stats([s["winner"]["test_gap"] for s in searches]),
        "winner_own_checkpoint_test_minus_rerun_test_mean": stats(
            [s["winner"]["own_checkpoint_test"] - s["winner"]["rerun_test_mean"] for s in searches]),
        "rerun_changed_winner": sum(s["changed_winner"] for s in searches),
        "registered_rerun_test_mean_minus_winner_rerun_test_mean": stats(
            [s["configs"][s["registered"]["rank"] - 1]["test_mean"] - s["winner"]["rerun_test_mean"]
             for s in searches]),
        "interval_width": stats(widths),
        "fresh_inside": inside, "fresh_total": fresh,
        "fresh_inside_per_search": [s["fresh"]["inside"] for s in searches],
        "searches_meeting_goal_8_of_10": sum(s["fresh"]["inside"] >= 0.8 * len(s["fresh"]["test"]) for s in searches),
        "fresh_mean_inside": sum(s["fresh"]["mean_inside"] for s in searches),
        "rerun_share_of_search_time": stats([s["rerun_s"] / s["search_s"] for s in searches]),
    }


def markdown_table(result: dict) -> str:
    rows = ["| search seed | best val (search) | its re-runs: val mean | test mean | its own checkpoint's test | "
            "re-run changed the winner | registered: test mean [95% interval] | fresh seeds inside |",
            "|---|---|---|---|---|---|---|---|"]
    for s in result["searches"]:
        w, r = s["winner"], s["registered"]["interval"]
        rows.append(f"| {s['seed']} | {w['best_val']:.3f} | {w['rerun_val_mean']:.3f} | {w['rerun_test_mean']:.3f} | "
                    f"{w['own_checkpoint_test']:.3f} | {'yes' if s['changed_winner'] else 'no'} | "
                    f"{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}] | {s['fresh']['inside']}/{len(s['fresh']['test'])} |")
    return "\n".join(rows)


def plot(result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    searches = result["searches"]
    figure, (curse, fresh) = plt.subplots(1, 2, figsize=(12, 4.5))
    for x, s in enumerate(searches):
        w = s["winner"]
        values = [w["best_val"], w["rerun_val_mean"], w["rerun_test_mean"], w["own_checkpoint_test"]]
        curse.vlines(x, min(values), max(values), color="#dddddd", linewidth=6, zorder=0)
        curse.plot([x], [w["best_val"]], "*", color="#08519c", markersize=13, label="best val (search)" if x == 0 else None)
        curse.plot([x], [w["rerun_val_mean"]], "o", color="#6baed6", label="its re-runs: val mean" if x == 0 else None)
        curse.plot([x], [w["rerun_test_mean"]], "s", color="#fd8d3c", label="its re-runs: test mean" if x == 0 else None)
        curse.plot([x], [w["own_checkpoint_test"]], "x", color="black", markersize=8,
                   label="its own checkpoint: test (registered before)" if x == 0 else None)
        mean, low, high = s["registered"]["interval"]
        fresh.errorbar([x], [mean], yerr=[[mean - low], [high - mean]], fmt="D", color="#d94801", capsize=6,
                       label="registered: test mean, 95% interval" if x == 0 else None)
        fresh.plot([x + 0.15] * len(s["fresh"]["test"]), s["fresh"]["test"], "o", color="#31a354", alpha=0.6,
                   label=f"{len(s['fresh']['test'])} fresh seeds: test" if x == 0 else None)
        fresh.annotate(f"{s['fresh']['inside']}/{len(s['fresh']['test'])}", (x, high), textcoords="offset points",
                       xytext=(0, 6), ha="center", fontsize=9)
    labels = [f"seed {s['seed']}" for s in searches]
    for axis, title in ((curse, "the search's winner against its re-runs"),
                        (fresh, "registered interval against fresh seeds (count inside)")):
        axis.set_xticks(range(len(searches)), labels)
        axis.set_ylabel("macro-F1")
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=8, loc="best", framealpha=0.6)
    figure.suptitle(f"quick workload ({result['workload']}), 2-core CPU", fontsize=10)
    figure.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(FIGURE, dpi=110)
    plt.close(figure)


def write_result(searches: list[dict], args) -> dict:
    result = {
        "benchmark": "winners_curse",
        "workload": "classifier-quick at --fast size: 960 synthetic images at 32 px, 8 GPyOpt+ASHA trials up to "
                    f"8 epochs; re-runs {args.top_k} x {args.rerun_seeds}; {args.fresh_seeds} fresh seeds",
        "overrides": args.set, "machine": f"{os.cpu_count()} CPUs, {stdlib_platform.machine()}, shared",
        "summary": aggregate(searches), "searches": searches,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--rerun-seeds", type=int, default=3)
    parser.add_argument("--fresh-seeds", type=int, default=10)
    parser.add_argument("--resume", action="store_true", help="keep the searches already in the JSON")
    parser.add_argument("--table", action="store_true", help="print the saved JSON's table and summary and stop")
    parser.add_argument("--plot", action="store_true", help="draw the figure from the saved JSON and stop")
    parser.add_argument("--set", action="append", default=[], help="spec override, as mritune search --set")
    args = parser.parse_args()
    if args.plot:
        plot(json.loads(RESULTS.read_text()))
        return
    if args.table:
        result = json.loads(RESULTS.read_text())
        print(markdown_table(result))
        print(json.dumps(result["summary"], indent=1))
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    searches = json.loads(RESULTS.read_text())["searches"] if args.resume and RESULTS.is_file() else []
    done = {s["seed"] for s in searches}
    with tempfile.TemporaryDirectory(prefix="mritune-winners-curse-") as tmp:
        for seed in range(args.first_seed, args.first_seed + args.searches):
            if seed in done:
                continue
            searches.append(run_one(seed, args, Path(tmp)))
            print(json.dumps({k: searches[-1][k] for k in ("seed", "winner", "changed_winner", "fresh")}), flush=True)
            result = write_result(searches, args)
            plot(result)
    result = write_result(searches, args)
    plot(result)
    print(markdown_table(result))


if __name__ == "__main__":
    main()
