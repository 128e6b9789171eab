"""The same search submitted to `mritune cluster local up --workers N` and run on the embedded default, in one run.

On the local cluster the search goes through `mritune submit` (a Ray Job), its checkpoints to the SeaweedFS S3
endpoint and its tracking to the PostgreSQL-backed MLflow server with basic-auth; it must place trials on >= 2
nodes and register its champion. Measured for both:

- submit -> first trial: from the command (submit, or `mritune search` for the embedded run) to the start time
  of the first trial's MLflow run;
- efficiency = epochs trained x median steady epoch time / (search wall time x concurrent trial slots), the
  definition of benchmarks/platform_overhead.py.

    python benchmarks/cluster_local.py [--workers 2] [--trials 4] [--epochs 3] [--concurrent 2]

Writes benchmarks/results/cluster_local.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmark modules

RESULTS = Path(__file__).resolve().parent / "results"
MRITUNE = str(Path(sys.executable).with_name("mritune"))
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def write_spec(args, workdir: Path, name: str, storage_path: str, tracking_uri: str | None) -> Path:
    """The quick start's classifier search at 32 px (quickstart --fast's data), smaller: `--trials` x `--epochs`."""
    import yaml

    from mritune.platform.spec.config import load_spec
    from mritune.platform.run.quickstart import FAST_OVERRIDES, packaged_config

    overrides = [*FAST_OVERRIDES["classifier-quick.yaml"], f"name={name}", f"search.num_samples={args.trials}",
                 f"scheduler.max_t={args.epochs}", f"search.max_concurrent={args.concurrent}",
                 f"storage_path={storage_path}", f"tracking.experiment={name}",
                 f"tracking.uri={tracking_uri or 'null'}"]
    spec = load_spec(packaged_config("classifier-quick.yaml"), overrides)
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    return path


def measure(tracking_uri: str, experiment: str, started: float, wall: float, slots: int) -> dict:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    trials = client.search_runs([experiment_id], "tags.`mritune.role` = 'trial'")
    from platform_overhead import epoch_seconds

    first, later = epoch_seconds(client, trials)
    epochs = len(first) + len(later)
    steady = statistics.median(later or first)
    return {
        "trials": len(trials), "epochs": epochs, "search_wall_s": round(wall, 1),
        "submit_to_first_trial_s": round(min(run.info.start_time for run in trials) / 1000 - started, 1),
        "steady_epoch_median_s": round(steady, 2), "efficiency": round(epochs * steady / (wall * slots), 3),
        "nodes": len({run.data.tags.get("mritune.node_id") for run in trials}),
    }


def run_embedded(args, workdir: Path) -> dict:
    spec = write_spec(args, workdir, "bench-embedded", str(workdir / "ray_results"), f"sqlite:///{workdir}/mlruns.db")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "MLFLOW_", "AWS_"))}
    started = time.time()
    done = subprocess.run([MRITUNE, "search", str(spec)], env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, cwd=workdir,
                          capture_output=True, text=True)
    wall = time.time() - started
    if done.returncode != 0:
        raise RuntimeError(f"embedded search failed: {done.stderr[-2000:]}")
    return measure(f"sqlite:///{workdir}/mlruns.db", "bench-embedded", started, wall, args.concurrent)


def run_on_local_cluster(args, workdir: Path) -> dict:
    from mritune.platform.infra import local_cluster
    from mritune.platform.infra import storage
    from mritune.platform.run.jobs import job_logs, job_status, submit_search
    from mritune.platform.infra.processes import wait_until

    t = time.time()
    cluster = local_cluster.up(workers=args.workers, state_dir=workdir / "cluster")
    up_s = time.time() - t
    try:
        os.environ.update(cluster.env)
        spec = write_spec(args, workdir, "bench-cluster", cluster.storage_path, None)
        started = time.time()
        job_id = submit_search(spec, address=cluster.dashboard_url, tracking_uri=cluster.tracking_uri)
        status = wait_until(lambda: (s := job_status(job_id, address=cluster.dashboard_url)) in TERMINAL and s,
                            timeout_s=3600, what="the submitted search ending", interval_s=1.0)
        wall = time.time() - started
        if status != "SUCCEEDED":
            raise RuntimeError(f"job {status}: {''.join(job_logs(job_id, address=cluster.dashboard_url))[-3000:]}")
        result = measure(cluster.tracking_uri, "bench-cluster", started, wall, args.concurrent)
        experiment = storage.folders_named(storage.parse_location(cluster.storage_path), "bench-cluster-")[-1]
        result["checkpoint_folders_in_s3"] = _count_checkpoints(experiment)
        result["champion_registered"] = _has_champion(cluster.tracking_uri)
        result["cluster_up_s"] = round(up_s, 1)
        return result
    finally:
        t = time.time()
        local_cluster.down(state_dir=workdir / "cluster")
        print(f"cluster down in {time.time() - t:.1f} s")


def _count_checkpoints(experiment) -> int:
    import pyarrow.fs

    from mritune.platform.infra import storage

    filesystem, path = storage.open_filesystem(experiment)
    infos = filesystem.get_file_info(pyarrow.fs.FileSelector(path, recursive=True))
    return sum(1 for info in infos if info.type == pyarrow.fs.FileType.Directory
               and info.base_name.startswith("checkpoint_"))


def _has_champion(tracking_uri: str) -> bool:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri).get_model_version_by_alias("mritune-classifier", "champion")
    except MlflowException:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-", dir="/tmp") as tmp:
        workdir = Path(tmp)
        (workdir / "embedded").mkdir()
        (workdir / "local").mkdir()
        embedded = run_embedded(args, workdir / "embedded")
        cluster = run_on_local_cluster(args, workdir / "local")
    report = {
        "command": "python benchmarks/cluster_local.py " + " ".join(sys.argv[1:]),
        "settings": vars(args), "cpu_count": os.cpu_count(), "load_average_1m_at_end": os.getloadavg()[0],
        "embedded": embedded, "cluster_local": cluster,
        "efficiency_ratio_cluster_over_embedded": round(cluster["efficiency"] / embedded["efficiency"], 3),
        "first_trial_latency_ratio_cluster_over_embedded": round(
            cluster["submit_to_first_trial_s"] / embedded["submit_to_first_trial_s"], 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster_local.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
