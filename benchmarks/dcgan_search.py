"""Which search finds the better DCGAN at equal compute: GPyOpt + ASHA, PBT or PB2? And does the new recipe beat
today's? Both side by side in one run, on the quick start's synthetic data, every search a real mritune search
(`run_search`: local Ray, a SQLite MLflow store of its own, the champion registered and gated on the test split).

``schedulers`` (the default): for each ``--seeds`` search seed, three searches of ``configs/dcgan-quick.yaml``'s
recipe and space at ``--image-size``, no re-runs, each given the same epoch budget (``--budget`` epochs in all):

- ``gpyopt+asha``: the quick spec's searcher and ASHA (grace 1, reduction 2, max_t ``--max-t``) with as many
  trials as that budget holds at 3 epochs per trial (ASHA stops most early, so it tries more configurations);
- ``pbt`` and ``pb2``: a population of ``budget / max_t`` trials trained ``max_t`` epochs each, perturbed every
  ``max_t / 3`` epochs (the worse half copies the better half: quantile 0.5 for a small population).

The compute each search really used is counted (epochs trained, each retrained epoch after a copy counted again;
wall seconds). The champion's quality: ``test_fd`` of the registered checkpoint against its real-vs-real floor
(``test_fd_floor``), and the share of its samples the registered OOD guard accepts as in-distribution (1 - the
``test_samples_ood_flagged_fraction`` the registration logs).

``recipes``: today's recipe (the spec and the trainable settings before issue 24, ``LEGACY_RECIPE``) and the new one
(``configs/dcgan-quick.yaml`` as shipped), the full quick start's DCGAN search each (its trials, rungs and re-runs),
one after the other in this process: the goal is the new champion's ``test_fd`` at no more than half the old one's
and its samples accepted by the OOD guard at >= 80%.

    python benchmarks/dcgan_search.py schedulers [--seeds 3] [--image-size 32] [--budget 24] [--max-t 6]
    python benchmarks/dcgan_search.py recipes [--image-size 64]
    python benchmarks/dcgan_search.py report

Writes ``benchmarks/results/dcgan_search.json`` (both parts; a part run again replaces its own) and the winning
champion's 16 samples as ``docs/img/dcgan_search_champion.png`` and the recipe comparison's as
``docs/img/dcgan_recipes.png``.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "dcgan_search.json"
SPEC = ROOT / "configs" / "dcgan-quick.yaml"
METHODS = ("gpyopt+asha", "pbt", "pb2")
# configs/dcgan-quick.yaml as it was before issue 24 (commit a1c84cd) with the trainable settings that select the
# recipe of that time explicitly: its champion is what the new recipe is measured against.
OLD_SPEC_OVERRIDES = (
    "search.metric=swd", "search.num_samples=4", "search.options={acquisition: EI, "
    "pending_strategy: kriging_believer, n_initial_points: 2}",
    "search.space={lr_g: {loguniform: [1.0e-4, 1.0e-3]}, lr_d: {loguniform: [1.0e-4, 1.0e-3]}, "
    "label_smoothing: {uniform: [0.0, 0.2]}}",
    "scheduler={name: asha, max_t: 3, grace_period: 1, reduction_factor: 2}",
    "promotion={rerun_top_k: 2, rerun_seeds: 2, rule: interval}",
)
OLD_SEARCHED = ("lr_g", "lr_d", "label_smoothing")  # the old space's settings: not fixed by the legacy recipe
# The space every scheduler search draws from: the learning rates, which PBT and PB2 perturb too (the quick spec's
# dropout is an architecture setting a population cannot change, so it stays at its default for all three).
SCHEDULER_SPACE = "search.space={lr_g: {loguniform: [1.0e-4, 1.0e-3]}, lr_d: {loguniform: [2.0e-4, 2.0e-3]}}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("schedulers", "recipes", "report"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=None, help="32 for schedulers, 64 for recipes")
    parser.add_argument("--budget", type=int, default=24, help="epochs each search may train in all")
    parser.add_argument("--max-t", type=int, default=6)
    parser.add_argument("--work", type=Path, default=None, help="where the searches write (default: a temp folder)")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.part == "schedulers":
        results["schedulers"] = compare_schedulers(args)
    elif args.part == "recipes":
        results["recipes"] = compare_recipes(args)
    if args.part != "report":
        results["machine"] = {"cpus": os.cpu_count(), "platform": stdlib_platform.platform()}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print_report(results)


def method_overrides(method: str, *, budget: int, max_t: int, image_size: int) -> list[str]:
    """The quick spec turned into one method's search at one image size and epoch budget, without re-runs."""
    size = [f"data.synthetic.size={image_size}", f"trainable.image_size={image_size}", "promotion.rerun_top_k=0",
            SCHEDULER_SPACE]
    if method == "gpyopt+asha":
        # ASHA (grace 1, reduction 2, max_t 6: rungs 1, 2, 4) trained 3 epochs per trial on average (a first run
        # with budget / 2 = 12 trials trained 36 epochs, the population searches 24-28): budget / 3 trials.
        return [*size, f"search.num_samples={max(2, budget // 3)}", f"scheduler.max_t={max_t}",
                "scheduler.grace_period=1", "scheduler.reduction_factor=2"]
    population = max(2, budget // max_t)
    return [*size, "search.algorithm=random", "search.options={}", f"search.num_samples={population}",
            "search.max_concurrent=null",
            f"scheduler={{name: {method}, max_t: {max_t}, perturbation_interval: {max(1, max_t // 3)}, "
            "quantile_fraction: 0.5}"]


def compare_schedulers(args) -> dict:
    image_size = args.image_size or 32
    rows = []
    with tempfile.TemporaryDirectory(prefix="dcgan-search-") as scratch:
        work = args.work or Path(scratch)
        for seed in range(args.seeds):
            for method in METHODS:
                overrides = [*method_overrides(method, budget=args.budget, max_t=args.max_t, image_size=image_size),
                             f"search.seed={seed}"]
                row = run_one(work / f"{method}-{seed}", overrides, label=method)
                rows.append({"method": method, "seed": seed, **row})
                print(json.dumps(rows[-1]), flush=True)
        best = min((r for r in rows if r.get("test_fd") is not None), key=lambda r: r["test_fd"], default=None)
        if best is not None:
            write_champion_grid(best, ROOT / "docs" / "img" / "dcgan_search_champion.png")
    return {"image_size": image_size, "budget_epochs": args.budget, "max_t": args.max_t, "seeds": args.seeds,
            "rows": rows, "summary": summarise(rows, METHODS)}


def compare_recipes(args) -> dict:
    image_size = args.image_size or 64
    size = [f"data.synthetic.size={image_size}", f"trainable.image_size={image_size}"]
    old = [*OLD_SPEC_OVERRIDES, *size, *(f"trainable.{key}={value}" for key, value in old_recipe().items()
                                         if key not in OLD_SEARCHED)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="dcgan-recipes-") as scratch:
        work = args.work or Path(scratch)
        for label, overrides in (("old", old), ("new", size)):
            rows.append({"recipe": label, **run_one(work / label, overrides, label=label)})
            print(json.dumps(rows[-1]), flush=True)
        write_recipe_grids(rows, ROOT / "docs" / "img" / "dcgan_recipes.png")
    old_fd, new_fd = rows[0].get("test_fd"), rows[1].get("test_fd")
    ratio = new_fd / old_fd if old_fd and new_fd is not None else None
    return {"image_size": image_size, "old_recipe": old_recipe(), "rows": rows, "new_over_old_test_fd": ratio,
            "goal_fd_at_most_half": ratio is not None and ratio <= 0.5,
            "goal_ood_accepted_at_least_80pct": (rows[1].get("ood_accepted") or 0.0) >= 0.8}


def old_recipe() -> dict[str, object]:
    """The trainable settings that select the pre-issue-24 recipe (``trainables/dcgan/config.py``)."""
    from mritune.trainables.dcgan.config import LEGACY_RECIPE

    return dict(LEGACY_RECIPE)


def run_one(folder: Path, overrides: list[str], *, label: str) -> dict:
    """One real search in ``folder``; what it cost and what its registered champion scores on the test split."""
    from mritune.platform.run.runner import run_search
    from mritune.platform.spec.config import load_spec

    folder.mkdir(parents=True, exist_ok=True)
    overrides = [*overrides, f"tracking.uri=sqlite:///{folder / 'mlruns.db'}", f"storage_path={folder / 'ray'}",
                 f"registry.model_name=bench-dcgan-{label.replace('+', '-')}"]
    spec = load_spec(SPEC, overrides)
    started = time.perf_counter()
    outcome = run_search(spec, verbose=False, rerun_progress=False)
    wall = time.perf_counter() - started
    registration = outcome.registration
    metrics = registration.metrics if registration is not None else {}
    flagged = metrics.get("test_samples_ood_flagged_fraction")
    return {
        "status": outcome.status, "wall_s": round(wall, 1), "trials": len(outcome.table),
        "epochs_trained": epochs_trained(outcome), "val_fd": _round(metrics.get("fd")),
        "test_fd": _round(metrics.get("test_fd")), "test_fd_floor": _round(metrics.get("test_fd_floor")),
        "test_swd": _round(metrics.get("test_swd")), "test_swd_floor": _round(metrics.get("test_swd_floor")),
        "ood_accepted": None if flagged is None else round(1.0 - float(flagged), 3),
        "tracking_uri": outcome.tracking_uri, "model": None if registration is None else
        f"models:/{registration.model_name}/{registration.version}",
    }


def epochs_trained(outcome) -> int:
    """Epochs the search's trials trained: every logged epoch of every trial run (a retrained epoch counts again)."""
    from mlflow.tracking import MlflowClient

    from mritune.platform.tracking.trial_runs import child_runs

    client = MlflowClient(outcome.tracking_uri)
    return sum(len(client.get_metric_history(run.info.run_id, "gen_loss"))
               for run in child_runs(client, outcome.experiment_id, outcome.parent_run_id))


def summarise(rows: list[dict], methods) -> dict:
    """Per method: median test_fd, its ratio to the floor and to gpyopt+asha's (paired by seed), median compute."""
    summary = {}
    baseline = {r["seed"]: r["test_fd"] for r in rows if r["method"] == methods[0] and r.get("test_fd")}
    for method in methods:
        mine = [r for r in rows if r["method"] == method and r.get("test_fd") is not None]
        if not mine:
            summary[method] = {"searches": 0}
            continue
        paired = [r["test_fd"] / baseline[r["seed"]] for r in mine if r["seed"] in baseline]
        summary[method] = {
            "searches": len(mine),
            "median_test_fd": _round(statistics.median(r["test_fd"] for r in mine)),
            "median_x_floor": _round(statistics.median(r["test_fd"] / r["test_fd_floor"] for r in mine)),
            "median_ratio_to_gpyopt_asha": _round(statistics.median(paired)) if paired else None,
            "wins_against_gpyopt_asha": sum(ratio < 1.0 for ratio in paired) if method != methods[0] else None,
            "median_epochs": statistics.median(r["epochs_trained"] for r in mine),
            "median_wall_s": statistics.median(r["wall_s"] for r in mine),
            "median_ood_accepted": _round(statistics.median(r["ood_accepted"] for r in mine
                                                            if r["ood_accepted"] is not None), 3),
        }
    return summary


def _samples(row: dict, count: int = 16):
    """``count`` samples of a row's registered generator, in [-1, 1], from fixed noise."""
    import keras
    import mlflow
    import numpy as np

    mlflow.set_tracking_uri(row["tracking_uri"])
    folder = Path(mlflow.artifacts.download_artifacts(row["model"]))
    generator = keras.saving.load_model(next(folder.rglob("generator.keras")), compile=False, safe_mode=True)
    noise = np.random.default_rng(0).standard_normal((count, generator.input_shape[-1])).astype("float32")
    return np.asarray(generator.predict(noise, verbose=0))


def write_champion_grid(row: dict, path: Path) -> None:
    from mritune.trainables.dcgan.images import write_sample_grid

    write_sample_grid(_samples(row), path)
    row["grid"] = str(path.relative_to(ROOT))


def write_recipe_grids(rows: list[dict], path: Path) -> None:
    """Old recipe's champion (top 2 rows) above the new one's (bottom 2 rows): 8 samples each."""
    import numpy as np

    from mritune.trainables.dcgan.images import write_sample_grid

    grids = [_samples(row, 8) for row in rows if row.get("model")]
    if len(grids) == 2:
        write_sample_grid(np.concatenate(grids), path)


def print_report(results: dict) -> None:
    part = results.get("schedulers")
    if part:
        print(f"\nDCGAN search at {part['image_size']} px, {part['budget_epochs']} epochs each, {part['seeds']} seeds:")
        print(f"{'method':<12} {'test_fd':>8} {'x floor':>8} {'/ asha':>7} {'wins':>5} {'epochs':>7} {'wall s':>7} "
              f"{'OOD ok':>7}")
        for method, s in part["summary"].items():
            if not s.get("searches"):
                print(f"{method:<12} no registered champion")
                continue
            print(f"{method:<12} {s['median_test_fd']:>8} {s['median_x_floor']:>8} "
                  f"{s['median_ratio_to_gpyopt_asha'] or '-':>7} {s['wins_against_gpyopt_asha'] or '-':>5} "
                  f"{s['median_epochs']:>7} {s['median_wall_s']:>7} {s['median_ood_accepted']:>7}")
    part = results.get("recipes")
    if part:
        print(f"\nRecipes at {part['image_size']} px (the full quick start's DCGAN search each):")
        for row in part["rows"]:
            print(f"  {row['recipe']}: test_fd {row['test_fd']} (floor {row['test_fd_floor']}), OOD accepted "
                  f"{row['ood_accepted']}, {row['wall_s']} s")
        print(f"  new/old test_fd {part['new_over_old_test_fd']}: goal <= 0.5 "
              f"{'met' if part['goal_fd_at_most_half'] else 'MISSED'}; OOD >= 80% "
              f"{'met' if part['goal_ood_accepted_at_least_80pct'] else 'MISSED'}")


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


if __name__ == "__main__":
    main()
