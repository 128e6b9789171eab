"""Where a search's trial time goes, BEFORE (MRITUNE_TRIAL_SPEEDUPS=0) and AFTER (default), side by side in one run.

1. Breakdown of one trial's wall time, measured step by step in a fresh Ray actor: actor start + imports, data
   fetch from the object store, model build, first epoch (tracing) and steady epochs, evaluation, checkpoint,
   MLflow (child-run creation and per-epoch logging).
2. A 16-trial GPyOpt + ASHA classifier search through the platform in each mode: efficiency = epochs trained x
   median steady epoch time / (search wall time x concurrent trial slots), and the per-trial time outside epochs.

    python benchmarks/platform_overhead.py [--workload fast|full] [--trials N] [--backbone small_cnn]

The search is the quick start's classifier search: ``fast`` (default) with ``mritune quickstart --fast``'s
overrides, ``full`` as shipped; ``--trials`` overrides its number of trials. The one-trial breakdown trains the
spec's default configuration at the spec's image size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MODES = {"before": "0", "after": "1"}


def probe_trial(dataset_refs: list, config: dict, tracking_uri: str, speedups: bool, started: float) -> dict:
    """One trial's steps, timed, inside a fresh actor (run through ray.remote)."""
    marks = {"actor_start_s": time.time() - started}
    t = time.perf_counter()
    import keras  # noqa: F401
    import mlflow
    import ray

    from mritune.platform.tracking.trial_runs import MlflowTrialObserverFactory
    from mritune.trainables.classifier.training import train_classifier
    from mritune.trainables.runtime import configure_runtime

    marks["imports_s"] = time.perf_counter() - t
    t = time.perf_counter()
    dataset = ray.get(dataset_refs[0])  # in a list: a top-level ObjectRef argument would be fetched before the timer
    marks["data_fetch_s"] = time.perf_counter() - t
    configure_runtime(cpus=1, speedups=speedups)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(f"probe-{speedups}-{time.time()}")
    parent = client.create_run(experiment_id).info.run_id
    observer = MlflowTrialObserverFactory(tracking_uri=tracking_uri, experiment_id=experiment_id,
                                          parent_run_id=parent, search_name="probe", background=speedups)()
    t = time.perf_counter()
    observer.on_start(dict(config), "probe")
    mlflow_s = time.perf_counter() - t
    epochs, last = [], [time.perf_counter()]

    def report(epoch_report):
        nonlocal mlflow_s
        now = time.perf_counter()
        epochs.append({"train_s": epoch_report.metrics["train_seconds"], "epoch_total_s": now - last[0]})
        t0 = time.perf_counter()
        observer.on_epoch(epoch_report)
        mlflow_s += time.perf_counter() - t0
        last[0] = time.perf_counter()

    with tempfile.TemporaryDirectory() as workdir:
        t_train = time.perf_counter()
        train_classifier(config, dataset, report, workdir=workdir, evaluate_test=False)
        train_total = time.perf_counter() - t_train
        t0 = time.perf_counter()
        observer.on_end("FINISHED", None, None)
        mlflow_s += time.perf_counter() - t0
    first_ready = epochs[0]["epoch_total_s"] - epochs[0]["train_s"]  # data prep + build + evaluation + checkpoint
    steady = statistics.median(e["train_s"] for e in epochs[1:])
    after_epoch = statistics.median(e["epoch_total_s"] - e["train_s"] for e in epochs[1:])
    return {**marks, "model_build_and_data_prep_s": first_ready - after_epoch,
            "first_epoch_train_s": epochs[0]["train_s"], "steady_epoch_train_s": steady,
            "evaluation_and_checkpoint_per_epoch_s": after_epoch, "mlflow_on_critical_path_s": mlflow_s,
            "trial_total_s": marks["actor_start_s"] + marks["imports_s"] + marks["data_fetch_s"] + train_total}


def run_probe(dataset, config: dict, tracking_uri: str, speedups: bool) -> dict:
    import ray

    remote = ray.remote(num_cpus=1, runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}})(probe_trial)
    return ray.get(remote.remote([ray.put(dataset)], config, tracking_uri, speedups, time.time()))


def search_spec(args, workdir: Path, mode: str):
    """The quick start's classifier search (``--workload fast``: with ``mritune quickstart --fast``'s overrides),
    registry off, tracking and Tune results in ``workdir``."""
    from mritune.platform.spec.config import load_spec
    from mritune.platform.run.quickstart import FAST_OVERRIDES, packaged_config

    overrides = list(FAST_OVERRIDES["classifier-quick.yaml"]) if args.workload == "fast" else []
    overrides += [f"name=overhead-{mode}", f"tracking.uri=sqlite:///{workdir}/mlruns.db",
                  f"tracking.experiment=overhead-{mode}", "registry.enabled=false",
                  f"storage_path={workdir}/ray_results"]
    if args.trials:
        overrides.append(f"search.num_samples={args.trials}")
    return load_spec(packaged_config("classifier-quick.yaml"), overrides)


def epoch_seconds(client, runs) -> tuple[list[float], list[float]]:
    """The trials' first-epoch and later-epoch training times (``train_seconds``): tracing vs steady epochs."""
    first, later = [], []
    for run in runs:
        history = sorted(client.get_metric_history(run.info.run_id, "train_seconds"), key=lambda m: m.step)
        first += [m.value for m in history[:1]]
        later += [m.value for m in history[1:]]
    return first, later


def run_search_measured(args, workdir: Path, mode: str) -> dict:
    from mlflow.tracking import MlflowClient

    from mritune.platform.run.runner import run_search
    from mritune.platform.tracking.tags import WORKER_PID_TAG

    spec = search_spec(args, workdir, mode)
    start = time.perf_counter()
    outcome = run_search(spec)
    wall = time.perf_counter() - start
    client = MlflowClient(outcome.tracking_uri)
    runs = client.search_runs([outcome.experiment_id], f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    first, later = epoch_seconds(client, runs)
    epochs = len(first) + len(later)
    steady = statistics.median(later or first)
    slots = spec.search.max_concurrent
    return {
        "mode": mode, "trials": len(runs), "epochs": epochs, "search_wall_s": wall,
        "first_epoch_median_s": statistics.median(first), "later_epoch_median_s": steady,
        "efficiency": epochs * steady / (wall * slots),
        # Everything a trial slot spent outside training batches (actor start, imports, tracing beyond a steady
        # epoch, evaluation, checkpoints, MLflow, Tune's scheduling), per trial.
        "slot_s_outside_epochs_per_trial": (wall * slots - epochs * steady) / len(runs),
        "actors": len({run.data.tags.get(WORKER_PID_TAG) for run in runs}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("fast", "full"), default="fast")
    parser.add_argument("--trials", type=int, default=None, help="number of trials (default: the spec's)")
    parser.add_argument("--backbone", default="small_cnn")
    parser.add_argument("--probe-epochs", type=int, default=3)
    parser.add_argument("--skip-search", action="store_true", help="only the one-trial breakdown")
    parser.add_argument("--out", default=str(RESULTS / "platform_overhead.json"))
    args = parser.parse_args()

    import ray

    from mritune.trainables.data.synthetic import load_synthetic

    spec = search_spec(args, Path(tempfile.gettempdir()), "probe")
    synth = spec.data.synthetic
    dataset = load_synthetic(n=synth.n, size=synth.size, seed=synth.seed, image_size=spec.data.resolved_image_size)
    config = {**spec.fixed_config(), "backbone": args.backbone, "epochs": args.probe_epochs,
              "learning_rate": 1e-3, "dense_units": 64, "alpha": 0.35, "weights": "none"}
    report: dict = {"args": vars(args), "breakdown": {}, "search": {}}
    saved_env = os.environ.get("MRITUNE_TRIAL_SPEEDUPS")
    with tempfile.TemporaryDirectory(prefix="mritune-overhead-") as tmp:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            for mode, flag in MODES.items():
                uri = f"sqlite:///{tmp}/probe.db"
                report["breakdown"][mode] = run_probe(dataset, config, uri, speedups=flag == "1")
                if args.skip_search:
                    continue
                os.environ["MRITUNE_TRIAL_SPEEDUPS"] = flag
                report["search"][mode] = run_search_measured(args, Path(tmp) / mode, mode)
        finally:
            ray.shutdown()
            if saved_env is None:
                os.environ.pop("MRITUNE_TRIAL_SPEEDUPS", None)
            else:
                os.environ["MRITUNE_TRIAL_SPEEDUPS"] = saved_env
    print_tables(report)
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


def print_tables(report: dict) -> None:
    modes = list(report["breakdown"])
    print("\n| one trial (s) | " + " | ".join(modes) + " |\n|---|" + "---|" * len(modes))
    for key in report["breakdown"][modes[0]]:
        print(f"| {key} | " + " | ".join(f"{report['breakdown'][m][key]:.2f}" for m in modes) + " |")
    if report["search"]:
        print("\n| search | " + " | ".join(modes) + " |\n|---|" + "---|" * len(modes))
        for key in report["search"][modes[0]]:
            values = [report["search"][m][key] for m in modes]
            print(f"| {key} | " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in values) + " |")


if __name__ == "__main__":
    main()
