"""Do early learning curves rank configurations honestly? Batch-norm statistics before and after "precise BN".

The same random configurations of the quick spec's space (at the ``--fast`` resolution: 32 px, 960 synthetic
images) are trained side by side in one run, one arm after another per configuration, under:

- ``last_batch`` (before): the small CNN's batch norm at momentum 0, so evaluation used the statistics of the
  last training batch (the workaround this replaced);
- ``precise`` (after, the shipped code): statistics recomputed as the average over the training batches after
  every epoch (``trainables/classifier/model.recompute_batch_norm_statistics``);
- ``group_norm``: GroupNormalization (8 groups) in place of batch norm: no batch statistics at all.

Per arm: the Spearman rank correlation between val macro-F1 at ``--early`` epochs (ASHA's first rung) and the best
val macro-F1 over ``--epochs``; the number of epoch-to-epoch drops of val macro-F1 larger than 0.05; the best
configuration's test macro-F1 (at its best validation epoch); the mean epoch seconds. Written to
``benchmarks/results/precise_bn.json`` (summary and every curve).

    python benchmarks/precise_bn.py [--configs 64] [--epochs 10] [--early 2] [--arms last_batch,precise,group_norm]
    python benchmarks/precise_bn.py --table          # the docs' table from the committed JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform as stdlib_platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "precise_bn.json"
sys.path.insert(0, str(Path(__file__).resolve().parent / "curves"))
from record import load_recording_spec, record_one  # noqa: E402  (the recorder's training of one config)

ARMS = ("last_batch", "precise", "group_norm")
DROP = 0.05


def use_arm(arm: str) -> None:
    """Point the classifier's model code at one arm's normalisation (module settings, read at build/epoch end)."""
    from mritune.trainables.classifier import model

    model.BN_MOMENTUM = 0.0 if arm == "last_batch" else SHIPPED["BN_MOMENTUM"]
    model.PRECISE_BN_BATCHES = 0 if arm == "last_batch" else SHIPPED["PRECISE_BN_BATCHES"]
    model._small_cnn = _group_norm_small_cnn if arm == "group_norm" else SHIPPED["_small_cnn"]


def _group_norm_small_cnn(config):
    """The small CNN with GroupNormalization where the shipped one has BatchNormalization."""
    import keras

    regularizer = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    size = config.image_size
    inputs = keras.Input(shape=(size, size, 1))
    x = inputs
    for filters in (32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=regularizer)(x)
        x = keras.layers.GroupNormalization(groups=8)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="small_cnn")


SHIPPED: dict = {}


def summarise(runs: list[dict], arm: str, early: int) -> dict:
    from scipy.stats import spearmanr

    mine = [run for run in runs if run["arm"] == arm and len(run["val"]) >= early]
    early_scores = [run["val"][early - 1] for run in mine]
    best_scores = [max(run["val"]) for run in mine]
    drops = sum(1 for run in mine for a, b in zip(run["val"], run["val"][1:]) if a - b > DROP)
    winner = max(mine, key=lambda run: max(run["val"]))
    best_epoch = winner["val"].index(max(winner["val"]))
    seconds = [s for run in mine for s in run["seconds"][1:]]  # the first epoch also builds the model
    return {
        "configs": len(mine),
        "spearman_early_vs_best": round(float(spearmanr(early_scores, best_scores).statistic), 3),
        "drops_over_0.05": drops,
        "epoch_pairs": sum(len(run["val"]) - 1 for run in mine),
        "best_config_index": winner["config_index"],
        "best_val_macro_f1": max(winner["val"]),
        "best_config_test_macro_f1": winner["test"][best_epoch],
        "median_best_val_macro_f1": round(sorted(best_scores)[len(best_scores) // 2], 4),
        "mean_epoch_s": round(sum(seconds) / max(1, len(seconds)), 3),
        "diverged": sum(run["ending"] != "completed" for run in mine),
    }


def markdown_table(result: dict) -> str:
    lines = [f"| arm | Spearman (epoch {result['early']} vs best of {result['epochs']}) | drops > {DROP} "
             "| best config: val / test macro-F1 | median best val | s per epoch |", "|---|---|---|---|---|---|"]
    for arm, s in result["summary"].items():
        lines.append(f"| {arm} | {s['spearman_early_vs_best']:.2f} | {s['drops_over_0.05']} of {s['epoch_pairs']} "
                     f"| {s['best_val_macro_f1']:.3f} / {s['best_config_test_macro_f1']:.3f} "
                     f"| {s['median_best_val_macro_f1']:.3f} | {s['mean_epoch_s']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--early", type=int, default=2, help="the early epoch compared (ASHA's first rung)")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seed", type=int, default=0, help="draws the configurations; training seed too")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(RESULT.read_text())))
        return
    arms = args.arms.split(",")
    if any(arm not in ARMS for arm in arms):
        raise SystemExit(f"error: --arms takes {', '.join(ARMS)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from mritune.platform.run.runner import load_data, param_space
    from mritune.search.space_ray import convert_ray_space
    from mritune.trainables.classifier import model
    from mritune.trainables.runtime import configure_runtime

    SHIPPED.update(BN_MOMENTUM=model.BN_MOMENTUM, PRECISE_BN_BATCHES=model.PRECISE_BN_BATCHES,
                   _small_cnn=model._small_cnn)
    spec = load_recording_spec(ROOT / "configs" / "classifier-quick.yaml", [])
    data = load_data(spec)
    configure_runtime(cpus=1)
    space = convert_ray_space(param_space(spec))
    rng = np.random.default_rng(args.seed)
    fixed = {k: v for k, v in spec.fixed_config().items() if k not in spec.search.space}
    runs: list[dict] = []
    started = time.perf_counter()
    for index in range(args.configs):
        config = {k: v for k, v in space.decode(rng.random(space.dim)).items() if k in spec.search.space}
        for arm in arms[index % len(arms):] + arms[: index % len(arms)]:  # rotate: load drift spreads over arms
            use_arm(arm)
            result = record_one({**fixed, **config, "seed": args.seed}, data, args.epochs)
            curve = result["curve"]
            runs.append({"arm": arm, "config_index": index, "config": config, "ending": result["ending"],
                         "val": [e[0] for e in curve], "test": [e[2] for e in curve], "seconds": [e[3] for e in curve]})
        print(f"[{index + 1}/{args.configs}] " + " ".join(
            f"{run['arm']}={max(run['val'], default=0):.3f}" for run in runs[-len(arms):]), flush=True)
    result = {
        "benchmark": "precise_bn", "configs": args.configs, "epochs": args.epochs, "early": args.early,
        "seed": args.seed, "resolution": "32 px, 960 synthetic images (quick start --fast)",
        "machine": f"{os.cpu_count()} CPUs, {stdlib_platform.machine()}, 1 TensorFlow thread",
        "wall_s": round(time.perf_counter() - started, 1),
        "summary": {arm: summarise(runs, arm, args.early) for arm in arms}, "runs": runs,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=1))
    print(markdown_table(result))


if __name__ == "__main__":
    main()
