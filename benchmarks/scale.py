"""A search of a thousand trials through the platform: how its cost grows, and resuming it after a driver SIGKILL.

    python benchmarks/scale.py --table /path/classifier_32px.jsonl                 # SQLite, 100/300/1000 × 4/16
    python benchmarks/scale.py --table T --stores server --trials 300 --concurrent 16   # on `mritune cluster local`
    python benchmarks/scale.py --table T --trials 1000 --concurrent 16 --kill-at 500   # + SIGKILL and resume
    python benchmarks/scale.py --report-only                                         # the table from the JSON

Each run is ``mritune search`` in a process of its own (as a user runs it) on a spec of task ``replay``
(``benchmarks/replay_task.py``: recorded learning curves answered by the nearest recorded configuration, each epoch
after its recorded seconds × ``--time-scale``), the quick spec's searcher (GPyOpt, background fits) and ASHA
(grace 2, reduction 2, max_t 16), ``--concurrent`` trials at a time with ``2 / concurrent`` CPUs each (fractional),
registration off. Stores: ``sqlite`` (``sqlite:///…/mlruns.db``, the embedded default) or ``server`` (the
``mlflow server`` on PostgreSQL that ``mritune cluster local up`` starts, its Ray left unused: the search runs on
an embedded Ray, so the two stores are compared on the same Ray).

Measured per run:

- per-trial platform time: for each trial, its worker slot's time from its start to the next trial's start on that
  slot (its own end for a slot's last trial) less the seconds it replayed: what the driver (suggest, scheduling,
  results, checkpoints, callbacks) and the worker (actor, MLflow run, checkpoint files) cost. Median and mean over
  the first and the last hundred trials (by start), and last / first (the goal: at most 1.5);
- the driver's resident memory (``/proc/<pid>/status`` VmRSS, sampled every 2 s): at the first and last hundred
  trials and its peak; the MLflow store's size on disk (SQLite file, or how much PostgreSQL's data folder grew
  during the run) and artifacts;
- the time to write the report (``write_search_report``, wall and CPU) afterwards;
- with ``--kill-at N``: the driver's process group SIGKILLed once N trials have ended (Tune's trial folders),
  ``mritune resume`` run on the same spec, and ``tests/faults/checker.py``'s ``assert_nothing_lost`` on the result.

Writes ``benchmarks/results/scale.json`` (one row per run, appended).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
OUT = RESULTS / "scale.json"
sys.path.insert(0, str(ROOT))


def spec_dict(*, table: Path, trials: int, concurrent: int, tracking_uri: str, storage: Path) -> dict:
    from mritune.search.replay import RecordedCurves

    header = RecordedCurves.load(table).header
    return {
        "name": f"scale-{trials}x{concurrent}",
        "task": "replay",
        "data": {"synthetic": {"n": 200, "size": 32, "seed": 0}},  # loaded and shipped as for any search; unread
        "search": {"algorithm": "gpyopt", "options": {"n_initial_points": 4}, "num_samples": trials,
                   "max_concurrent": concurrent, "seed": 0, "metric": "val_macro_f1", "mode": "max",
                   "space": header["space"]},
        "scheduler": {"name": "asha", "max_t": int(header["epochs"]), "grace_period": 2, "reduction_factor": 2},
        "resources": {"cpu": round(2 / concurrent, 4), "gpu": 0},
        "tracking": {"uri": tracking_uri, "experiment": f"scale-{trials}x{concurrent}-{time.time_ns()}"},
        "registry": {"enabled": False},
        "failure": {"max_failures": 1},
        "storage_path": str(storage / "ray_results"),
        "trainable": {key: value for key, value in header["fixed"].items() if key != "epochs"},
    }


def run_env(table: Path, time_scale: float) -> dict:
    # Every run on an embedded Ray, also with `cluster local`'s env.sh sourced for its MLflow server: that cluster's
    # Ray (1 CPU a node) is not what is measured, and the two stores are compared on the same Ray.
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), env.get("PYTHONPATH")]))
    env.update(MRITUNE_TASK_PACKAGES="replay_task", MRITUNE_REPLAY_TABLE=str(table),
               MRITUNE_REPLAY_TIME_SCALE=str(time_scale), TF_CPP_MIN_LOG_LEVEL="2")
    return env


class Driver:
    """``mritune search|resume`` in its own session; its memory sampled, its trial folders counted."""

    def __init__(self, command: list[str], *, cwd: Path, env: dict, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True,
                                        stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.rss_mb: list[tuple[float, int, float]] = []  # (seconds, trials started, MB)
        self.started = time.perf_counter()

    def poll(self, storage: Path) -> int:
        started = count_trial_folders(storage)
        rss = _rss_mb(self.process.pid)
        if rss is not None:
            self.rss_mb.append((time.perf_counter() - self.started, started, rss))
        return started

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # the driver and the embedded Ray it started
        self.process.wait()


def count_trial_folders(storage: Path) -> int:
    return sum(1 for folder in (storage / "ray_results").glob("*/replay_trainable_*") if folder.is_dir())


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_one(args, *, trials: int, concurrent: int, store: str, kill_at: int | None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"scale-{trials}x{concurrent}-{store}-"))
    uri = f"sqlite:///{workdir / 'mlruns.db'}" if store == "sqlite" else os.environ["MLFLOW_TRACKING_URI"]
    spec = spec_dict(table=args.table, trials=trials, concurrent=concurrent, tracking_uri=uri, storage=workdir)
    spec_file = workdir / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    env = run_env(args.table, args.time_scale)
    mritune = str(Path(sys.executable).with_name("mritune"))
    row = {"trials": trials, "concurrent": concurrent, "store": store, "time_scale": args.time_scale,
           "table_configs": None, "workdir": str(workdir), "load_average_before": os.getloadavg()}
    database_before = store_size(workdir, uri, store)
    started = time.perf_counter()
    driver = Driver([mritune, "search", str(spec_file)], cwd=workdir, env=env, log=workdir / "search.log")
    killed = None
    while driver.process.poll() is None:
        count = driver.poll(workdir)
        if kill_at and killed is None and count >= kill_at + concurrent:  # ~kill_at ended, `concurrent` running
            driver.kill()
            killed = {"trials_started": count, "at_s": time.perf_counter() - started}
            break
        time.sleep(2)
    rss = list(driver.rss_mb)
    if killed:
        row["kill"] = killed
        resume_started = time.perf_counter()
        driver = Driver([mritune, "resume", str(spec_file)], cwd=workdir, env=env, log=workdir / "resume.log")
        while driver.process.poll() is None:
            driver.poll(workdir)
            time.sleep(2)
        row["resume_s"] = time.perf_counter() - resume_started
        rss += [(t + row["kill"]["at_s"], n, mb) for t, n, mb in driver.rss_mb]
    row["exit_code"] = driver.process.returncode
    row["wall_s"] = time.perf_counter() - started
    if driver.process.returncode != 0:
        row["error"] = driver.log.read_text()[-3000:]
        return row
    row.update(measure(workdir, spec, rss, store, database_before=database_before))
    if killed:
        row["checker"] = check(workdir, spec)
    return row


def measure(workdir: Path, spec: dict, rss: list, store: str, *, database_before: dict) -> dict:
    from mritune.platform.views.search_report.build import write_search_report

    folder = _search_folder(workdir)
    state = json.loads((folder / "mritune_search.json").read_text())
    platform = platform_times(state, spec)
    trials = platform["trials"]
    out: dict = {"platform": platform}
    if rss:
        first = [mb for _, n, mb in rss if n <= 100] or [rss[0][2]]
        last = [mb for _, n, mb in rss if n >= trials - 100] or [rss[-1][2]]
        out["driver_rss_mb"] = {"first_100": max(first), "last_100": max(last), "peak": max(mb for *_, mb in rss)}
    out["store_mb"] = store_size(workdir, state["tracking_uri"], store)
    if store == "server" and out["store_mb"]["database_folder"] is not None:  # one server holds every run's search
        out["store_mb"]["growth"] = out["store_mb"]["database_folder"] - database_before["database_folder"]
    wall, cpu = time.perf_counter(), time.process_time()
    write_search_report(folder, out_dir=workdir / "report")
    out["report_s"] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    return out


def _search_folder(workdir: Path) -> Path:
    [folder] = [p.parent for p in (workdir / "ray_results").glob("*/mritune_search.json")]
    return folder


def platform_times(state: dict, spec: dict) -> dict:
    """Per-trial platform seconds: slot time from a trial's start to the next start on its slot, less replay."""
    from mlflow.tracking import MlflowClient

    from mritune.platform.spec.config import parse_spec
    from mritune.platform.views.search_report import data as d
    from mritune.platform.views.search_report.collect import collect_search

    record = collect_search(spec=parse_spec(state["spec"]), tracking_uri=state["tracking_uri"],
                            experiment_id=state["experiment_id"], parent_run_id=state["parent_run_id"],
                            ui_url="http://127.0.0.1:5000")
    client = MlflowClient(state["tracking_uri"])
    replayed = {}
    for trial in record.trials:
        run = client.get_run(trial.run_id)
        replayed[trial.trial_id] = float(run.data.metrics.get("replayed_s", 0.0))
    bars = sorted(d.timeline(record.trials), key=lambda b: (b.slot, b.start_s))
    slot_time = {}
    for bar, after in zip(bars, bars[1:] + [None]):
        following = after.start_s if after is not None and after.slot == bar.slot else bar.end_s
        slot_time[bar.trial_id] = following - bar.start_s
    ordered = sorted(record.trials, key=lambda t: (t.start_s, t.number))
    per_trial = [slot_time[t.trial_id] - replayed[t.trial_id] for t in ordered]
    window = min(100, len(per_trial) // 2)
    first, last = np.array(per_trial[:window]), np.array(per_trial[-window:])
    return {"trials": len(per_trial), "replayed_s_total": sum(replayed.values()),
            "first_100": {"median": float(np.median(first)), "mean": float(first.mean())},
            "last_100": {"median": float(np.median(last)), "mean": float(last.mean())},
            "last_over_first_median": float(np.median(last) / np.median(first)),
            "last_over_first_mean": float(last.mean() / first.mean()),
            "search_wall_s": record.duration_s, "slots": len({b.slot for b in bars})}


def store_size(workdir: Path, uri: str, store: str) -> dict:
    def size(path: Path) -> float:
        if path.is_file():
            return path.stat().st_size / 2**20
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20 if path.exists() else 0.0

    if store == "sqlite":
        return {"database": size(Path(uri.removeprefix("sqlite:///"))), "artifacts": size(workdir / "mlartifacts")}
    # `cluster local` keeps PostgreSQL's data in <its temp folder>/postgres (platform/infra/local_cluster.py).
    state_file = Path(os.environ.get("MRITUNE_CLUSTER_DIR", Path.home() / ".mritune" / "cluster-local"), "state.json")
    temp_dirs = json.loads(state_file.read_text()).get("temp_dirs", []) if state_file.exists() else []
    pg = next((Path(t) / "postgres" for t in temp_dirs if (Path(t) / "postgres" / "PG_VERSION").exists()), None)
    return {"database_folder": size(pg) if pg else None,
            "note": "PostgreSQL's whole data folder (WAL included), all searches on the server; growth: this run's"}


def check(workdir: Path, spec: dict) -> dict:
    """The fault suite's checker on the resumed search: every trial one run, none RUNNING, epochs contiguous."""
    from tests.faults.checker import assert_nothing_lost, tune_trial_ids

    folder = _search_folder(workdir)
    state = json.loads((folder / "mritune_search.json").read_text())
    try:
        summary = assert_nothing_lost(state["tracking_uri"], state["parent_run_id"], trial_ids=tune_trial_ids(folder),
                                      parent_status="FINISHED")
    except AssertionError as exc:
        return {"passed": False, "error": str(exc)[:2000]}
    # The checker compares MLflow with the trials Tune knows; a Tune that restarted from no trials knows few, so
    # the resumed search must also hold all its trials. Runs of trials the driver started after Tune's last saved
    # state are closed and tagged orphaned (counted, as the checker allows).
    wanted = spec["search"]["num_samples"]
    if summary["trials"] != wanted:
        return {"passed": False, **summary, "error": f"{summary['trials']} of {wanted} trials in Tune's state, "
                f"{summary['orphaned_runs']} trial runs outside it"}
    return {"passed": True, **summary}


def table(rows: list[dict]) -> str:
    lines = ["| store | trials | concurrent | wall s | platform s/trial: first 100 | last 100 | last / first "
             "| driver RSS MB first / last / peak | store MB | report s (cpu) | resume after SIGKILL |",
             "|---" * 11 + "|"]
    for r in rows:
        if "platform" not in r:
            lines.append(f"| {r['store']} | {r['trials']} | {r['concurrent']} | failed: exit {r.get('exit_code')} |")
            continue
        p, rss, st = r["platform"], r.get("driver_rss_mb", {}), r["store_mb"]
        store_mb = st.get("database") if r["store"] == "sqlite" else st.get("growth", st.get("database_folder"))
        resume = "-"
        if "kill" in r:
            resume = (f"killed at {r['kill']['trials_started']} started; resumed in {r['resume_s']:.0f} s; checker "
                      + ("passed" if r["checker"]["passed"] else "FAILED"))
        lines.append(
            f"| {r['store']} | {r['trials']} | {r['concurrent']} | {r['wall_s']:.0f} | {p['first_100']['median']:.2f} "
            f"| {p['last_100']['median']:.2f} | {p['last_over_first_median']:.2f} | "
            f"{rss.get('first_100', 0):.0f} / {rss.get('last_100', 0):.0f} / {rss.get('peak', 0):.0f} | "
            f"{store_mb if store_mb is None else round(store_mb, 1)} | {r['report_s']['wall']:.1f} "
            f"({r['report_s']['cpu']:.1f}) | {resume} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=BENCH / "curves" / "classifier_32px.jsonl")
    parser.add_argument("--trials", default="100,300,1000")
    parser.add_argument("--concurrent", default="4,16")
    parser.add_argument("--stores", default="sqlite", help="sqlite, server (needs `mritune cluster local up` "
                        "and its env.sh sourced)")
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--kill-at", type=int, default=None, help="SIGKILL the driver after about N trials ended "
                        "(on runs of at least 2N trials) and resume")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    if not args.report_only:
        args.table = args.table.resolve()
        # This process reads the searches back (report, checker): it must know the replay task as the driver does.
        os.environ.update({k: v for k, v in run_env(args.table, args.time_scale).items()
                           if k.startswith("MRITUNE_")})
        sys.path.insert(0, str(BENCH))
        for store in args.stores.split(","):
            for concurrent in [int(c) for c in args.concurrent.split(",")]:
                for trials in [int(t) for t in args.trials.split(",")]:
                    kill = args.kill_at if args.kill_at and trials >= 2 * args.kill_at else None
                    row = run_one(args, trials=trials, concurrent=concurrent, store=store, kill_at=kill)
                    rows.append(row)
                    args.out.write_text(json.dumps(rows, indent=1))
                    print(json.dumps({k: v for k, v in row.items() if k != "error"}), flush=True)
                    if "error" in row:
                        print(row["error"], file=sys.stderr)
    print(table(rows))


if __name__ == "__main__":
    main()
