"""Serving latency of `mritune serve`: a real server process and a real HTTP client (requests), p50/p95.

    nice -n 10 python benchmarks/serve_latency.py                     # MobileNetV2 α0.35 at 128 px, 200 requests
    python benchmarks/serve_latency.py --backbone small_cnn --requests 50   # quick look

The model is built with the real builder (untrained: latency does not depend on the weights' values), logged with
`log_classifier_model` into a temporary SQLite MLflow, registered, pulled with `mritune pull`, and served from
that folder. Each request carries one 176×208 PNG (the public dataset's size): JSON (``inputs``, base64) or a
multipart upload; a third series sends 16 images per JSON request. Requests go one after another over a
keep-alive session. Prints a markdown table and writes benchmarks/results/serve_latency.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict_throughput import build_classifier_file  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def register_and_pull(keras_path: Path, folder: Path, image_size: int) -> Path:
    import mlflow

    from mritune.deploy.model_logging import log_classifier_model
    from mritune.deploy.registry_client import pull
    from mritune.trainables.data.classes import CLASS_NAMES

    uri = f"sqlite:///{folder}/mlruns.db"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.MlflowClient().create_experiment("serve-bench", artifact_location=str(folder / "artifacts"))
    with mlflow.start_run(experiment_id=experiment):
        info = log_classifier_model(keras_path=str(keras_path), image_size=image_size, class_names=CLASS_NAMES,
                                    metadata={"dataset_fingerprint": "bench"})
    version = mlflow.register_model(info.model_uri, "mritune-classifier").version
    mlflow.MlflowClient().set_registered_model_alias("mritune-classifier", "champion", version)
    pull("mritune-classifier@champion", out_dir=folder / "pulled", tracking_uri=uri)
    return folder / "pulled"


def start_server(model_dir: Path) -> tuple[subprocess.Popen, str]:
    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(["mritune", "serve", "--model", str(model_dir), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{base}/ping", timeout=1).status_code == 200:
                return process, base
        except requests.ConnectionError:
            time.sleep(0.2)  # not listening yet; the deadline bounds the wait
    stop(process)
    raise RuntimeError("the server did not start")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def time_requests(send, count: int, warmup: int = 10) -> dict:
    for _ in range(warmup):
        send()
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = send()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"request failed: {response.status_code} {response.text[:200]}")
    ms = np.array(latencies)
    return {"requests": count, "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean())}


def measure(base: str, count: int) -> dict:
    import cv2
    import requests

    rng = np.random.default_rng(0)
    png = cv2.imencode(".png", rng.integers(0, 256, (208, 176), dtype=np.uint8))[1].tobytes()
    text = base64.b64encode(png).decode()
    session = requests.Session()
    url = f"{base}/invocations"
    return {
        "json, 1 image": time_requests(lambda: session.post(url, json={"inputs": {"image": [text]}}), count),
        "multipart, 1 image": time_requests(lambda: session.post(url, files=[("file", ("a.png", png))]), count),
        "json, 16 images": time_requests(lambda: session.post(url, json={"inputs": {"image": [text] * 16}}),
                                         max(10, count // 4)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenetv2")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="mritune-serve-bench-") as tmp:
        folder = Path(tmp)
        keras_path = build_classifier_file(folder, backbone=args.backbone, image_size=args.image_size)
        model_dir = register_and_pull(keras_path, folder, args.image_size)
        process, base = start_server(model_dir)
        try:
            series = measure(base, args.requests)
        finally:
            stop(process)
    report = {"backbone": args.backbone, "image_size": args.image_size, "load_average": os.getloadavg(),
              "series": series}
    print_table(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


def print_table(report: dict) -> None:
    base = report["series"]["json, 1 image"]["p50_ms"]
    print(f"\nServing latency, {report['backbone']} at {report['image_size']} px, one client, keep-alive "
          f"(load average {report['load_average'][0]:.1f})\n")
    print("| request | n | p50 ms | p95 ms | mean ms | p50 / json-1 p50 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in report["series"].items():
        print(f"| {name} | {row['requests']} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['mean_ms']:.1f} "
              f"| {row['p50_ms'] / base:.2f}× |")


if __name__ == "__main__":
    sys.exit(main())
