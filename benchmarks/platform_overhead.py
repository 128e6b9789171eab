"""Platform overhead per trial: the same classifier training called as a plain function, and as one-trial
searches through the platform (Ray Tune trial + MLflow child run + registry off), side by side in one process.

    python benchmarks/platform_overhead.py [--epochs 2] [--n 480] [--size 32] [--trials 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def trainable_config(args) -> dict:
    return {"backbone": "small_cnn", "image_size": args.size, "batch_size": 32, "epochs": args.epochs,
            "learning_rate": 1e-3, "dense_units": 32}


def time_plain(args, dataset) -> float:
    from mritune.trainables.classifier_training import train_classifier

    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        train_classifier(trainable_config(args), dataset, lambda report: None, workdir=workdir)
        return time.perf_counter() - start


def time_platform(args, workdir: Path) -> tuple[float, int]:
    from mritune.platform.config import parse_spec
    from mritune.platform.runner import run_search

    fixed = trainable_config(args)
    spec = parse_spec({
        "name": "overhead-bench",
        "task": "classifier",
        "data": {"synthetic": {"n": args.n, "size": args.size, "seed": 0}},
        "search": {"algorithm": "random", "num_samples": args.trials, "max_concurrent": 1,
                   "space": {"dropout": {"choice": [0.2]}}},
        "scheduler": {"name": "fifo"},
        "resources": {"cpu": 2},
        "tracking": {"uri": f"sqlite:///{workdir}/mlruns.db", "experiment": "overhead-bench"},
        "registry": {"enabled": False},
        "storage_path": str(workdir / "ray_results"),
        "trainable": {k: v for k, v in fixed.items() if k != "epochs"} | {"epochs": args.epochs},
    })
    start = time.perf_counter()
    outcome = run_search(spec)
    return time.perf_counter() - start, len(outcome.table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n", type=int, default=480)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args()

    import ray

    from mritune.trainables.synthetic import load_synthetic

    dataset = load_synthetic(n=args.n, size=args.size, seed=0)
    plain = [time_plain(args, dataset) for _ in range(args.trials)]
    with tempfile.TemporaryDirectory(prefix="mritune-overhead-") as tmp:
        ray_start = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_seconds = time.perf_counter() - ray_start
        search_seconds, trials = time_platform(args, Path(tmp))
        ray.shutdown()
    plain_per_trial = sum(plain) / len(plain)
    platform_per_trial = search_seconds / trials
    row = {"plain_s_per_trial": plain_per_trial, "platform_s_per_trial": platform_per_trial,
           "overhead_s_per_trial": platform_per_trial - plain_per_trial, "ray_init_s": ray_seconds,
           "ratio": platform_per_trial / plain_per_trial, "trials": trials, "args": vars(args)}
    print("\n| plain train_classifier s/trial | through the platform s/trial | overhead s/trial | ratio | ray.init s |")
    print("|---|---|---|---|---|")
    print(f"| {plain_per_trial:.1f} | {platform_per_trial:.1f} | {row['overhead_s_per_trial']:.1f} | "
          f"{row['ratio']:.2f}x | {ray_seconds:.1f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "platform_overhead.json").write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
