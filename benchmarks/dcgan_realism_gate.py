"""Which realism number should gate the DCGAN: SWD or the Fréchet distance (FD)? Both against their floors.

On the quick DCGAN's data (960 synthetic slices, ``configs/dcgan-quick.yaml``'s recipe) at 32 px, on the test
split exactly as the gate measures it (``dcgan/evaluation.generator_test_evaluation``):

- generators of different quality: untrained (epoch 0) and after 1 and 3 epochs, each trained on ``--seeds``
  training seeds: how far each metric puts them above its floor, and how much the training seed moves it;
- a controlled ladder of known quality: real training images with Gaussian pixel noise of growing sigma (the
  truth is the order), so a metric that does not grow along it cannot be trusted to rank generators;
- measurement noise: one generator measured with ``--draws`` other noise and metric seeds;
- the floor's own noise: ``--draws`` other draws of the training images on the real side.

Separation per metric: the gap between the mean of two quality levels divided by the metric's mean spread
(standard deviation over training seeds) within a level, positive when the longer-trained generators score lower
(better); ``x floor``: the value divided by the floor (1 = as good as real images).

    python benchmarks/dcgan_realism_gate.py [--seeds 3] [--draws 5] [--epochs 0 1 3] [--image-size 32]
Writes ``benchmarks/results/dcgan_realism_gate.json`` (``--out`` another file, e.g. for 64 px).
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "dcgan_realism_gate.json"
RECIPE = {"image_size": 32, "batch_size": 32, "base_filters": 16, "latent_dim": 100}  # dcgan-quick's (--image-size)
NOISE_SIGMAS = (0.0, 0.05, 0.1, 0.2, 0.4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per quality level")
    parser.add_argument("--draws", type=int, default=5, help="measurement / floor draws")
    parser.add_argument("--epochs", type=int, nargs="+", default=[0, 1, 3])
    parser.add_argument("--image-size", type=int, default=32, choices=(32, 64))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    RECIPE["image_size"] = args.image_size
    os.environ.setdefault("MRITUNE_CACHE_DIR", tempfile.mkdtemp(prefix="mritune-gate-cache-"))
    from mritune.trainables.runtime import configure_runtime

    configure_runtime(cpus=1)
    started = time.perf_counter()
    data = _data()
    from mritune.trainables.dcgan.realism import feature_network

    net_started = time.perf_counter()
    network = feature_network(data, RECIPE["image_size"])
    result = {
        "command": "python benchmarks/dcgan_realism_gate.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if k != "out"),
        "machine": f"{stdlib_platform.machine()}, {os.cpu_count()} CPUs, 1 TensorFlow thread",
        "data": {"synthetic": {"n": 960, "size": 64, "seed": 0}, "image_size": RECIPE["image_size"],
                 "test_images": len(data.x_test)},
        "recipe": RECIPE,
        "feature_network": {"trained": network.trained, "seconds": round(time.perf_counter() - net_started, 2),
                            "train_images": len(data.x_train)},
        "generators": _generators(data, args),
        "ladder": _ladder(data),
        "floor_draws": _floor_draws(data, args.draws),
    }
    result["measurement"] = _measurement(data, args.draws)
    result["summary"] = _summary(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {args.out} ({result['seconds']} s)")


def _data():
    from mritune.trainables.data.synthetic import load_synthetic

    return load_synthetic(n=960, size=64, seed=0, image_size=RECIPE["image_size"])


def _test_metrics(generator, data, out_dir: Path) -> dict[str, float]:
    from mritune.trainables.dcgan.evaluation import generator_test_evaluation

    evaluation = generator_test_evaluation(generator, data, image_size=RECIPE["image_size"],
                                           latent_dim=RECIPE["latent_dim"], out_dir=out_dir)
    return {k: float(v) for k, v in evaluation.metrics.items()}


def _generators(data, args) -> list[dict]:
    """The gate's test metrics of the generator after each of ``args.epochs`` epochs, per training seed."""
    import keras

    from mritune.trainables.dcgan.config import DCGANConfig
    from mritune.trainables.dcgan.model import build_generator
    from mritune.trainables.dcgan.training import train_dcgan
    from mritune.trainables.evaluation import load_model

    rows = []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            if 0 in args.epochs:
                keras.utils.set_random_seed(seed)
                generator = build_generator(DCGANConfig.from_dict({**RECIPE, "seed": seed}))
                rows.append({"epochs": 0, "seed": seed, **_test_metrics(generator, data, work / "e0")})
            trained = sorted(e for e in args.epochs if e > 0)
            if not trained:
                continue
            reports = []
            train_dcgan({**RECIPE, "seed": seed, "epochs": trained[-1]}, data, reports.append,
                        workdir=str(work / "gan"), evaluate_test=False)
            for report in reports:
                if report.epoch in trained:
                    generator = load_model(Path(report.checkpoint_dir) / "generator.keras")
                    rows.append({"epochs": report.epoch, "seed": seed,
                                 **_test_metrics(generator, data, work / f"e{report.epoch}")})
            print(f"seed {seed}: {[(r['epochs'], round(r['test_swd'], 1), round(r['test_fd'], 4)) for r in rows]}")
    return rows


def _ladder(data) -> list[dict]:
    """SWD and FD of real training images with Gaussian noise of growing sigma (clipped to [-1, 1])."""
    from mritune.trainables.dcgan.evaluation import held_out_test_images
    from mritune.trainables.data.arrays import resized
    from mritune.trainables.dcgan.images import to_unit_range
    from mritune.trainables.dcgan.metrics import sliced_wasserstein_distance
    from mritune.trainables.dcgan.realism import realism_reference

    real = held_out_test_images(data, RECIPE["image_size"])
    reference = realism_reference(data, RECIPE["image_size"], real)
    # Another draw of training images than the floor's: the ladder's sigma 0 is a second real-vs-real measurement.
    rows = np.random.default_rng(99).permutation(len(data.x_train))[:len(real)]
    base = to_unit_range(resized(data.x_train[rows], RECIPE["image_size"]))
    out = []
    for sigma in NOISE_SIGMAS:
        noisy = np.clip(base + np.random.default_rng(1).normal(0, sigma, base.shape), -1, 1).astype(np.float32)
        out.append({"sigma": sigma, "test_swd": sliced_wasserstein_distance(noisy, real, seed=7),
                    "test_fd": reference.frechet_distance(noisy)})
    return out


def _floor_draws(data, draws: int) -> list[dict]:
    """The floors with other draws of the training images (the floor's own spread)."""
    from mritune.trainables.data.arrays import resized
    from mritune.trainables.dcgan.evaluation import held_out_test_images
    from mritune.trainables.dcgan.images import to_unit_range
    from mritune.trainables.dcgan.metrics import sliced_wasserstein_distance
    from mritune.trainables.dcgan.realism import realism_reference

    real = held_out_test_images(data, RECIPE["image_size"])
    reference = realism_reference(data, RECIPE["image_size"], real)
    out = [{"draw": "the floor's", "swd": reference.floors.swd, "fd": reference.floors.fd}]
    for draw in range(draws):
        rows = np.random.default_rng(1000 + draw).permutation(len(data.x_train))[:len(real)]
        sample = to_unit_range(resized(data.x_train[rows], RECIPE["image_size"]))
        out.append({"draw": draw, "swd": sliced_wasserstein_distance(sample, real, seed=100 + draw),
                    "fd": reference.frechet_distance(sample)})
    return out


def _measurement(data, draws: int) -> list[dict]:
    """One generator (1 epoch, seed 0) measured with other noise and SWD seeds: the metrics' own noise."""
    from mritune.trainables.dcgan.evaluation import held_out_test_images
    from mritune.trainables.dcgan.metrics import sliced_wasserstein_distance
    from mritune.trainables.dcgan.realism import realism_reference
    from mritune.trainables.dcgan.training import train_dcgan
    from mritune.trainables.evaluation import load_model

    real = held_out_test_images(data, RECIPE["image_size"])
    reference = realism_reference(data, RECIPE["image_size"], real)
    with tempfile.TemporaryDirectory() as work:
        result = train_dcgan({**RECIPE, "seed": 0, "epochs": 1}, data, lambda report: None, workdir=work,
                             evaluate_test=False)
        generator = load_model(Path(result.model_path))
        out = []
        for draw in range(draws):
            noise = np.random.default_rng(500 + draw).standard_normal((len(real), RECIPE["latent_dim"]))
            fake = np.asarray(generator.predict(noise.astype(np.float32), verbose=0), dtype=np.float32)
            out.append({"draw": draw, "swd": sliced_wasserstein_distance(fake, real, seed=100 + draw),
                        "fd": reference.frechet_distance(fake)})
    return out


def _cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else float("nan")


def _summary(result: dict) -> dict:
    rows = result["generators"]
    floor = {"swd": rows[0]["test_swd_floor"], "fd": rows[0]["test_fd_floor"]}
    summary: dict = {"floor": floor}
    levels = sorted({row["epochs"] for row in rows})
    for metric in ("swd", "fd"):
        per_level = {e: [row[f"test_{metric}"] for row in rows if row["epochs"] == e] for e in levels}
        spread = statistics.mean(statistics.stdev(v) for v in per_level.values() if len(v) > 1) \
            if all(len(v) > 1 for v in per_level.values()) else float("nan")
        ladder = [row[f"test_{metric}"] for row in result["ladder"]]
        floors = [draw[metric] for draw in result["floor_draws"]]
        summary[metric] = {
            "x_floor_by_epochs": {str(e): [round(v / floor[metric], 2) for v in vals] for e, vals in per_level.items()},
            "mean_by_epochs": {str(e): statistics.mean(vals) for e, vals in per_level.items()},
            "seed_cv_by_epochs": {str(e): round(_cv(vals), 3) for e, vals in per_level.items()},
            "separation": {f"{a}->{b}": round((statistics.mean(per_level[a]) - statistics.mean(per_level[b])) / spread,
                                              2) for a, b in zip(levels, levels[1:])},
            "ladder_x_floor": [round(v / floor[metric], 2) for v in ladder],
            "ladder_monotonic": all(b > a for a, b in zip(ladder, ladder[1:])),
            "floor_cv": round(_cv(floors), 3),
            "measurement_cv": round(_cv([m[metric] for m in result["measurement"]]), 3),
        }
    return summary


if __name__ == "__main__":
    main()
