"""Many trials on one GPU: four trials sharing it against one alone (epoch time, peak memory), and a reused actor.

    python benchmarks/gpu_check.py                       # on a machine with an NVIDIA GPU (about 5 minutes)
    python benchmarks/gpu_check.py --cpu-smoke           # the mechanics on a CPU machine (one logical GPU)

It has NOT run on a GPU yet: until ``benchmarks/results/gpu_check.json`` holds a run with ``"device"`` naming a
GPU, the docs say so. Three scenarios, one ``Tuner.fit`` each, on a local Ray that sees the machine's GPUs, every
trial set up as mritune's trainable sets it up (``configure_runtime(cpus=trial_cpus(), gpus=trial_gpus())``,
``trainables/gpu_share.py``) and training the classifier (``train_classifier``) for ``--epochs`` epochs:

- ``alone``: one trial with ``resources.gpu: 1`` (memory growth);
- ``shared``: four trials at once with ``resources.gpu: 0.25`` each (each capped to a quarter of the device);
- ``reused``: two trials at 0.25 one after the other in one reused actor (``reuse_actors``): what the second
  finds allocated when it starts, and its own peak.

Per trial: the median epoch time after the first (which traces and compiles), TensorFlow's peak GPU memory
(``tf.config.experimental.get_memory_info``), the memory the process holds by ``nvidia-smi`` (TensorFlow's pool
plus the CUDA context: what ``gpu_share.CONTEXT_RESERVE_MB`` estimates), and the cap it ran under. The summary
gives the shared trials' epoch time over the lone trial's, the four trials' combined images per second over the
lone trial's, and whether every peak stayed under its cap. Writes ``benchmarks/results/gpu_check.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def gpu_trial(config: dict, data) -> None:
    """One trial: mritune's runtime set-up, the classifier's training, and the GPU memory it took."""
    from ray import tune

    from mritune.trainables.classifier.training import train_classifier
    from mritune.trainables.runtime import configure_runtime, free_keras_state
    from mritune.trainables.tune_trainables import trial_cpus, trial_gpus

    free_keras_state()
    settings = configure_runtime(cpus=trial_cpus(), gpus=trial_gpus())
    at_start = _tf_memory(reset=True)
    epoch_s, last = [], [time.perf_counter()]

    def report(epoch_report) -> None:
        now = time.perf_counter()
        epoch_s.append(now - last[0])
        last[0] = now

    workdir = tempfile.mkdtemp(prefix="gpu-check-")
    try:
        train_classifier(config, data, report, workdir=workdir, evaluate_test=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    after = _tf_memory(reset=False)
    tune.report({"pid": os.getpid(), "share": trial_gpus(), "gpus_visible": settings.gpus,
                 "limit_mb": settings.gpu_memory_limit_mb, "mixed_precision": settings.mixed_precision,
                 "epoch_s": epoch_s, "tf_current_at_start_mb": at_start.get("current_mb"),
                 "tf_peak_mb": after.get("peak_mb"), "process_mb": _process_gpu_mb(),
                 "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                 "started": last[0] - sum(epoch_s), "ended": last[0]})


def _tf_memory(*, reset: bool) -> dict:
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return {}
    info = tf.config.experimental.get_memory_info("GPU:0")
    if reset:
        tf.config.experimental.reset_memory_stats("GPU:0")
    return {"current_mb": info["current"] / 2**20, "peak_mb": info["peak"] / 2**20}


def _process_gpu_mb() -> float | None:
    """This process's GPU memory by nvidia-smi (None without it, or when the PID namespace hides it)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    out = subprocess.run([smi, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=30).stdout
    for line in out.splitlines():
        pid, _, used = line.partition(",")
        if pid.strip() == str(os.getpid()):
            return float(used)
    return None


def run_scenario(name: str, *, data, config: dict, share: float, trials: int, concurrent: int, cpus: float,
                 storage: str) -> list[dict]:
    from ray import tune

    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(gpu_trial, data=data), {"cpu": cpus, "gpu": share}),
        param_space={**config, "seed": tune.grid_search(list(range(trials)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True),
        run_config=tune.RunConfig(name=f"gpu-check-{name}", storage_path=storage, verbose=0),
    )
    rows = []
    for result in tuner.fit():
        if result.error:
            raise RuntimeError(f"scenario {name}: a trial failed: {result.error}")
        rows.append({"scenario": name, **{k: result.metrics[k] for k in (
            "pid", "share", "gpus_visible", "limit_mb", "mixed_precision", "epoch_s", "tf_current_at_start_mb",
            "tf_peak_mb", "process_mb", "cuda_visible_devices", "started", "ended")}})
    return rows


def summarize(rows: list[dict], images_per_epoch: int) -> dict:
    import numpy as np

    def epoch_median(row: dict) -> float:
        later = row["epoch_s"][1:] or row["epoch_s"]
        return float(np.median(later))

    alone = [r for r in rows if r["scenario"] == "alone"]
    shared = [r for r in rows if r["scenario"] == "shared"]
    reused = sorted((r for r in rows if r["scenario"] == "reused"), key=lambda r: r["started"])
    out: dict = {"images_per_epoch": images_per_epoch}
    if alone and shared:
        alone_s = epoch_median(alone[0])
        shared_s = [epoch_median(r) for r in shared]
        out["epoch_s"] = {"alone": alone_s, "shared_median": float(np.median(shared_s))}
        out["shared_over_alone_epoch_time"] = float(np.median(shared_s)) / alone_s
        out["throughput_shared_over_alone"] = sum(images_per_epoch / s for s in shared_s) / (images_per_epoch / alone_s)
    capped = [r for r in rows if r["limit_mb"] is not None and r["tf_peak_mb"] is not None]
    out["peaks_under_cap"] = all(r["tf_peak_mb"] <= r["limit_mb"] for r in capped) if capped else None
    out["peak_mb"] = {r["scenario"] + f"#{i}": r["tf_peak_mb"] for i, r in enumerate(rows)}
    out["process_mb"] = {r["scenario"] + f"#{i}": r["process_mb"] for i, r in enumerate(rows)}
    if len(reused) == 2:
        out["reused_same_process"] = reused[0]["pid"] == reused[1]["pid"]
        out["reused_second_starts_with_mb"] = reused[1]["tf_current_at_start_mb"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=3200, help="synthetic images (train/val/test split)")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="no GPU: one logical Ray GPU, a tiny CNN, 2 epochs (checks the mechanics only)")
    parser.add_argument("--out", default=str(RESULTS / "gpu_check.json"))
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    device = _device_name()
    if device is None and not args.cpu_smoke:
        sys.exit("error: no NVIDIA GPU here (nvidia-smi found none); run it on a GPU machine, or --cpu-smoke")
    if args.cpu_smoke:
        args.backbone, args.image_size, args.images, args.epochs, args.batch_size = "small_cnn", 32, 200, 2, 32

    import ray

    from mritune.platform.spec.config import load_spec
    from mritune.platform.run.runner import load_data

    data = load_data(load_spec(ROOT / "configs" / "classifier-quick.yaml", [
        f"data.synthetic.n={args.images}", f"data.synthetic.size={args.image_size}",
        f"trainable.image_size={args.image_size}"]))
    config = {"backbone": args.backbone, "image_size": args.image_size, "batch_size": args.batch_size,
              "epochs": args.epochs, "learning_rate": 1e-3, "weights": "none"}
    cores = os.cpu_count() or 2
    ray.init(num_cpus=cores, num_gpus=1 if args.cpu_smoke else None, include_dashboard=False, log_to_driver=False)
    rows: list[dict] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as storage:
            common = {"data": data, "config": config, "storage": storage}
            rows += run_scenario("alone", share=1, trials=1, concurrent=1, cpus=min(4, cores), **common)
            rows += run_scenario("shared", share=0.25, trials=4, concurrent=4, cpus=max(cores // 4, 0.5), **common)
            rows += run_scenario("reused", share=0.25, trials=2, concurrent=1, cpus=max(cores // 4, 0.5), **common)
    finally:
        ray.shutdown()
    payload = {"device": device or "none (--cpu-smoke: one logical Ray GPU, no device)", "args": vars(args),
               "wall_s": time.perf_counter() - started, "rows": rows,
               "summary": summarize(rows, images_per_epoch=len(data.y_train))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1))
    print(json.dumps(payload["summary"], indent=1))


def _device_name() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    out = subprocess.run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader"], capture_output=True,
                         text=True, timeout=30)
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


if __name__ == "__main__":
    main()
