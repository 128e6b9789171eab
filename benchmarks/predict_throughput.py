"""Prediction throughput of `mritune predict`'s code path (decode + Keras), batched vs one image at a time.

    nice -n 10 python benchmarks/predict_throughput.py                 # MobileNetV2 α0.35 and small_cnn, 128 px
    python benchmarks/predict_throughput.py --images 64 --backbones small_cnn   # quick look

Images are synthetic PNGs of the public dataset's second layout (176×208), decoded and resized to 128 px by
`decode_image` as in training. Models are untrained (weights: none): inference cost does not depend on the
weights' values. TensorFlow gets ``--threads`` intra-op threads (2 = the whole machine). Prints a markdown table
and writes benchmarks/results/predict_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def build_classifier_file(folder: Path, *, backbone: str, image_size: int) -> Path:
    """A saved .keras classifier from the real builder (as the trainings save it)."""
    from mritune.trainables.data.classes import CLASS_NAMES
    from mritune.trainables.classifier.config import ClassifierConfig
    from mritune.trainables.classifier.model import build_classifier

    config = ClassifierConfig.from_dict({"backbone": backbone, "image_size": image_size, "weights": "none"})
    path = folder / f"{backbone}-{image_size}.keras"
    build_classifier(config, num_classes=len(CLASS_NAMES)).save(path)
    return path


def write_images(folder: Path, count: int, *, shape=(208, 176), seed: int = 0) -> list[Path]:
    import cv2

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"scan_{index:04d}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, shape, dtype=np.uint8))
        paths.append(path)
    return paths


def load_predictor(keras_path: Path, image_size: int):
    from mritune.deploy.model_files import load_keras_model
    from mritune.deploy.pyfunc_classifier import ClassifierPredictor
    from mritune.trainables.data.classes import CLASS_NAMES

    return ClassifierPredictor(keras_model=load_keras_model(keras_path), image_size=image_size, class_names=CLASS_NAMES)


def measure(predictor, paths: list[Path], *, batch_size: int, repeats: int) -> float:
    """Best-of-``repeats`` images/s of predict_paths (decode + inference) over all ``paths``."""
    from mritune.deploy.predict import predict_paths

    predict_paths(paths[: min(len(paths), batch_size * 2)], predictor, batch_size=batch_size)  # warm-up (tracing)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        results = predict_paths(paths, predictor, batch_size=batch_size)
        best = min(best, time.perf_counter() - started)
        assert not any(r.error for r in results)
    return len(paths) / best


def decode_rate(paths: list[Path], image_size: int) -> float:
    from mritune.trainables.data.preprocess import decode_image

    started = time.perf_counter()
    for path in paths:
        decode_image(path, image_size)
    return len(paths) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backbones", default="mobilenetv2,small_cnn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mritune-bench-") as tmp:
        paths = write_images(Path(tmp) / "images", args.images)
        decode = decode_rate(paths, args.image_size)
        for backbone in args.backbones.split(","):
            predictor = load_predictor(build_classifier_file(Path(tmp), backbone=backbone, image_size=args.image_size),
                                       args.image_size)
            batched = measure(predictor, paths, batch_size=args.batch_size, repeats=args.repeats)
            single = measure(predictor, paths[: max(16, args.images // 4)], batch_size=1, repeats=args.repeats)
            rows.append({"backbone": backbone, "batched_images_per_s": batched, "single_images_per_s": single,
                         "batch_over_single": batched / single})
    report = {"images": args.images, "image_size": args.image_size, "batch_size": args.batch_size,
              "threads": args.threads, "decode_images_per_s": decode, "load_average": os.getloadavg(), "rows": rows}
    print_table(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predict_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


def print_table(report: dict) -> None:
    print(f"\nPrediction throughput, {report['image_size']} px, decode + inference, {report['threads']} threads "
          f"(load average {report['load_average'][0]:.1f}); decode alone: {report['decode_images_per_s']:.0f} img/s\n")
    print(f"| model | batched ({report['batch_size']}) img/s | single img/s | batched / single |")
    print("| --- | ---: | ---: | ---: |")
    for row in report["rows"]:
        print(f"| {row['backbone']} | {row['batched_images_per_s']:.1f} | {row['single_images_per_s']:.1f} "
              f"| {row['batch_over_single']:.2f}× |")


if __name__ == "__main__":
    sys.exit(main())
