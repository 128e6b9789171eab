"""Classifier training throughput: inside the trainable vs a bare `model.fit`, and epoch times per backbone/size.

    nice -n 10 python benchmarks/train_throughput.py                     # full: 640 synthetic images, 3 epochs
    python benchmarks/train_throughput.py --images 200 --epochs 2 --no-tune --sizes 64   # quick look

Part 1, side by side in one run, same in-memory arrays, same model (built by `build_classifier` from the same
config and seed) and batch size:
  - bare:       `model.fit` on the arrays (same class weights), timed per epoch by a callback;
  - train_fn:   `train_classifier` (what the trainables call), its per-epoch `train_seconds` (the fit part);
  - tune:       the Ray Tune trainable (local Ray, one trial holding both CPUs), `train_seconds` from its reports.
Throughput is training images per second, median over epochs after the first (the first epoch traces the graph).
The ratio to bare is the overhead of the trainable's fit path (goal: within 10%). The trainable's whole epoch
(validation metrics with scikit-learn, checkpoint save) is reported separately as `epoch wall`.

Part 2: epoch wall time of `train_classifier` for MobileNetV2 alpha 0.35 and small_cnn at 64 and 128 px.

Part 3 (``--registry-backbones``, default all registered backbones): training speed of every backbone at
``--registry-size`` px (128), batch 32, from scratch, fully trainable: the first step (graph tracing) is timed
alone, then ``--registry-steps`` compiled training steps; images/s is steps x batch / their time, and the epoch
time is estimated for the 4480-image train split of the original 6400-image dataset. A few steps, not epochs:
DenseNet169 on two shared CPU cores would take many minutes an epoch.

    python benchmarks/train_throughput.py --only-registry --registry-steps 4     # part 3 alone

TensorFlow uses ``--threads`` intra-op threads (2 = the whole machine). Prints markdown tables and writes
benchmarks/results/train_throughput.json (``--out`` another name).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def synthetic_data(images: int, size: int, cache: Path):
    from mritune.trainables.data.synthetic import load_synthetic

    return load_synthetic(n=images, size=size, seed=0, cache_dir=cache)


def bare_fit(config: dict, data, epochs: int) -> list[float]:
    """Seconds per epoch of a plain `model.fit` (one call, timed per epoch by a callback) on the same arrays,
    model, batch size and class weights as train_classifier."""
    import keras

    from mritune.trainables.checkpointing import epoch_seed
    from mritune.trainables.classifier.config import ClassifierConfig
    from mritune.trainables.classifier.model import build_classifier
    from mritune.trainables.classifier.training import ClassifierArrays, class_weights

    cfg = ClassifierConfig.from_dict(config)
    arrays = ClassifierArrays.from_dataset(data, cfg.image_size)
    keras.utils.set_random_seed(epoch_seed(cfg.seed, 0))
    model = build_classifier(cfg, num_classes=len(arrays.class_names))
    targets = keras.utils.to_categorical(arrays.y_train, len(arrays.class_names))
    starts, times = [], []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: starts.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs=None: times.append(time.perf_counter() - starts[-1]),
    )
    model.fit(arrays.x_train, targets, batch_size=cfg.batch_size, epochs=epochs, shuffle=True, verbose=0,
              class_weight=class_weights(cfg, arrays.y_train, len(arrays.class_names)), callbacks=[timer])
    return times


def train_function(config: dict, data, epochs: int) -> tuple[list[float], list[float]]:
    """(train_seconds per epoch, wall seconds per epoch) of train_classifier."""
    from mritune.trainables.classifier.training import train_classifier

    marks, fit_times = [time.perf_counter()], []

    def report(epoch_report) -> None:
        marks.append(time.perf_counter())
        fit_times.append(epoch_report.metrics["train_seconds"])

    with tempfile.TemporaryDirectory() as workdir:
        train_classifier({**config, "epochs": epochs}, data, report, workdir=workdir)
    walls = [later - earlier for earlier, later in zip(marks, marks[1:])]
    return fit_times, walls


def tune_trainable(config: dict, data, epochs: int, threads: int) -> list[float]:
    import ray
    from ray import tune

    from mritune.trainables.tune_trainables import make_trainable

    ray.init(address="local", num_cpus=threads, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}})
    try:
        with tempfile.TemporaryDirectory() as storage:
            trainable = tune.with_resources(tune.with_parameters(make_trainable("classifier"), data=data),
                                            {"cpu": threads})
            tuner = tune.Tuner(trainable, param_space={**config, "epochs": epochs},
                               run_config=tune.RunConfig(storage_path=storage, name="throughput", verbose=0))
            result = tuner.fit()[0]
            if result.error:
                raise RuntimeError(f"tune trial failed: {result.error}")
            return list(result.metrics_dataframe["train_seconds"])
    finally:
        ray.shutdown()


def steady(times: list[float]) -> float:
    """Median seconds per epoch after the first (graph tracing) epoch."""
    return statistics.median(times[1:] if len(times) > 1 else times)


def throughput_table(config: dict, data, epochs: int, threads: int, with_tune: bool) -> list[dict]:
    count = len(data.x_train)
    rows = []
    bare = steady(bare_fit(config, data, epochs))
    rows.append({"path": "bare model.fit", "images_per_s": count / bare, "epoch_s": bare})
    fit_times, walls = train_function(config, data, epochs)
    rows.append({"path": "train_classifier (fit part)", "images_per_s": count / steady(fit_times),
                 "epoch_s": steady(fit_times)})
    rows.append({"path": "train_classifier (epoch wall)", "images_per_s": count / steady(walls),
                 "epoch_s": steady(walls)})
    if with_tune:
        tune_times = tune_trainable(config, data, epochs, threads)
        rows.append({"path": "Tune trainable (fit part)", "images_per_s": count / steady(tune_times),
                     "epoch_s": steady(tune_times)})
    for row in rows:
        row["ratio_to_bare"] = row["images_per_s"] / rows[0]["images_per_s"]
    return rows


def epoch_time_table(data, sizes: list[int], backbones: list[str], epochs: int) -> list[dict]:
    rows = []
    for backbone in backbones:
        for size in sizes:
            config = {"backbone": backbone, "alpha": 0.35, "image_size": size, "batch_size": 32}
            fit_times, walls = train_function(config, data, epochs)
            rows.append({"backbone": backbone, "image_size": size, "first_epoch_s": walls[0],
                         "epoch_s": steady(walls), "fit_s": steady(fit_times),
                         "train_images_per_s": len(data.x_train) / steady(fit_times)})
    return rows


ORIGINAL_TRAIN_IMAGES = 4480  # 70% of the original 6400-image dataset


def backbone_registry_table(backbones: list[str], size: int, steps: int, batch: int = 32) -> list[dict]:
    """Per backbone: first (tracing) step seconds, steady images/s over ``steps`` compiled steps, epoch estimate."""
    import keras
    import numpy as np

    from mritune.trainables.classifier.config import ClassifierConfig
    from mritune.trainables.classifier.model import build_classifier
    from mritune.trainables.compiled_steps import build_optimizer

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(batch, size, size, 1)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 4, size=batch), 4)
    rows = []
    for backbone in backbones:
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = build_classifier(ClassifierConfig.from_dict({"backbone": backbone, "image_size": size,
                                                             "batch_size": batch}), num_classes=4)
        build_optimizer(model)
        started = time.perf_counter()
        model.train_on_batch(x, y)
        first = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        per_step = (time.perf_counter() - started) / steps
        rows.append({"backbone": backbone, "image_size": size, "batch": batch, "params": int(model.count_params()),
                     "first_step_s": first, "step_s": per_step, "images_per_s": batch / per_step,
                     "epoch_s_4480_images": ORIGINAL_TRAIN_IMAGES / (batch / per_step)})
        print(f"{backbone}: first step {first:.1f} s, {batch / per_step:.1f} images/s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=640, help="synthetic images (70%% train)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--backbones", nargs="*", default=["mobilenetv2", "small_cnn"],
                        help="backbones for the epoch-time table (none: skip it)")
    parser.add_argument("--throughput-backbone", default="mobilenetv2")
    parser.add_argument("--throughput-size", type=int, default=64)
    parser.add_argument("--no-tune", action="store_true", help="skip the Ray Tune trainable measurement")
    parser.add_argument("--out", default="train_throughput.json", help="file name under benchmarks/results/")
    parser.add_argument("--registry-backbones", nargs="*", default=None,
                        help="backbones for part 3 (default: every registered backbone; none: skip it)")
    parser.add_argument("--registry-size", type=int, default=128)
    parser.add_argument("--registry-steps", type=int, default=4, help="timed training steps per backbone")
    parser.add_argument("--only-registry", action="store_true", help="run part 3 only")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mritune.trainables.classifier.backbones import BACKBONE_NAMES
    from mritune.trainables.runtime import configure_runtime

    configure_runtime(cpus=args.threads)
    registry_backbones = list(BACKBONE_NAMES) if args.registry_backbones is None else args.registry_backbones
    registry = backbone_registry_table(registry_backbones, args.registry_size, args.registry_steps)
    print_registry_table(registry, args.threads)
    if args.only_registry:
        return write_results(args, {"load_average": os.getloadavg(), "backbones": registry})
    with tempfile.TemporaryDirectory() as cache:
        data = synthetic_data(args.images, max(args.sizes + [args.throughput_size]), Path(cache))
        config = {"backbone": args.throughput_backbone, "alpha": 0.35, "image_size": args.throughput_size,
                  "batch_size": 32}
        throughput = throughput_table(config, data, args.epochs, args.threads, not args.no_tune)
        epochs = epoch_time_table(data, args.sizes, args.backbones, args.epochs)
    print_tables(config, len(data.x_train), throughput, epochs)
    return write_results(args, {"train_images": len(data.x_train), "throughput_config": config,
                                "throughput": throughput, "epoch_times": epochs, "backbones": registry})


def write_results(args, results: dict) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / args.out
    out.write_text(json.dumps({"args": vars(args), **results}, indent=2))
    print(f"\nwrote {out}")
    return 0


def print_registry_table(rows: list[dict], threads: int) -> None:
    if not rows:
        return
    print(f"\n### Backbones at {rows[0]['image_size']} px, batch {rows[0]['batch']}, from scratch, {threads} threads\n")
    print("| backbone | parameters | first step s (tracing) | images/s | epoch s (4480 images, estimated) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['backbone']} | {row['params'] / 1e6:.2f} M | {row['first_step_s']:.1f} | "
              f"{row['images_per_s']:.1f} | {row['epoch_s_4480_images']:.0f} |")


def print_tables(config: dict, train_images: int, throughput: list[dict], epochs: list[dict]) -> None:
    print(f"\n### Throughput, {config['backbone']} {config['image_size']} px, batch {config['batch_size']}, "
          f"{train_images} training images\n")
    print("| path | images/s | s/epoch | ratio to bare |\n| --- | ---: | ---: | ---: |")
    for row in throughput:
        print(f"| {row['path']} | {row['images_per_s']:.1f} | {row['epoch_s']:.2f} | {row['ratio_to_bare']:.2f} |")
    print("\n### Epoch time of train_classifier (steady epochs; first epoch includes graph tracing)\n")
    print("| backbone | px | first epoch s | epoch s | fit s | train images/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in epochs:
        print(f"| {row['backbone']} | {row['image_size']} | {row['first_epoch_s']:.1f} | {row['epoch_s']:.2f} | "
              f"{row['fit_s']:.2f} | {row['train_images_per_s']:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
