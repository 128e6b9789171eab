"""ASHA's savings on the classifier: GPyOpt + ASHA against GPyOpt + FIFO at the same number of trials.

Both searches run through the real platform (`run_search`: embedded Ray, MLflow in a temporary SQLite store),
one after the other in one process, on the same synthetic data, searcher seed and space. Prints a markdown
table and writes benchmarks/results/asha_savings.json.

    python benchmarks/asha_savings.py [--trials 8] [--epochs 6] [--n 960] [--size 64] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from mritune.platform.spec.config import apply_overrides, parse_spec
from mritune.platform.run.runner import run_search

RESULTS = Path(__file__).resolve().parent / "results"


def spec_for(scheduler: str, *, args, seed: int, workdir: Path):
    raw = {
        "name": f"asha-bench-{scheduler}-{seed}",
        "task": "classifier",
        "data": {"synthetic": {"n": args.n, "size": args.size, "seed": 0}},
        "search": {
            "algorithm": "gpyopt", "options": {"n_initial_points": 4}, "num_samples": args.trials,
            "max_concurrent": 2, "seed": seed,
            "space": {
                "learning_rate": {"loguniform": [3e-4, 1e-2]},
                "dense_units": {"choice": [32, 64, 128]},
                "dropout": {"uniform": [0.0, 0.5]},
            },
        },
        "scheduler": {"name": scheduler, "max_t": args.epochs, "grace_period": 1, "reduction_factor": 3},
        "resources": {"cpu": 1},
        "tracking": {"uri": f"sqlite:///{workdir}/mlruns.db", "experiment": "asha-bench"},
        "registry": {"enabled": False},
        "storage_path": str(workdir / "ray_results"),
        "trainable": {"backbone": "small_cnn", "image_size": args.size, "batch_size": 32},
    }
    return parse_spec(apply_overrides(raw, []))


def run_one(scheduler: str, *, args, seed: int, workdir: Path) -> dict:
    start = time.perf_counter()
    outcome = run_search(spec_for(scheduler, args=args, seed=seed, workdir=workdir))
    seconds = time.perf_counter() - start
    best = max(row["val_macro_f1"] for row in outcome.table if row["val_macro_f1"] is not None)
    epochs = sum(row["epochs"] for row in outcome.table)
    return {"scheduler": scheduler, "seed": seed, "best_val_macro_f1": best, "epochs": epochs, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--n", type=int, default=960)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mritune-asha-bench-") as tmp:
        for seed in args.seeds:
            for scheduler in ("fifo", "asha"):
                rows.append(run_one(scheduler, args=args, seed=seed, workdir=Path(tmp)))
    print_table(rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "asha_savings.json").write_text(json.dumps({"args": vars(args), "runs": rows}, indent=2))


def print_table(rows: list[dict]) -> None:
    print("\n| seed | scheduler | best val_macro_f1 | epochs trained | wall s | F1 vs FIFO | epochs vs FIFO |")
    print("|---|---|---|---|---|---|---|")
    fifo = {row["seed"]: row for row in rows if row["scheduler"] == "fifo"}
    for row in rows:
        base = fifo[row["seed"]]
        print(f"| {row['seed']} | {row['scheduler']} | {row['best_val_macro_f1']:.4f} | {row['epochs']} | "
              f"{row['seconds']:.0f} | {row['best_val_macro_f1'] / base['best_val_macro_f1']:.1%} | "
              f"{row['epochs'] / base['epochs']:.0%} |")


if __name__ == "__main__":
    main()
