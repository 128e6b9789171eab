"""Concurrent promotion, side by side: the gate's queue (platform/registry/promotion.py) against reading and setting at once.

Starts an `mlflow server` on 127.0.0.1 (SQLite), then per round registers WRITERS versions into a fresh model name
from WRITERS threads at the same moment (each with its own client), once through ``promote`` (the queue) and once
with the queue disabled (``stale_after_s=0``: every earlier pending version counts as dead, which is the old
read-champion-then-set-alias gate). Counts rounds whose final champion is not the best version, decisions that a
sequential run would not have made, and the time one registration's gate takes.

    python benchmarks/reliability.py --rounds 5 --writers 8

Writes ``benchmarks/results/reliability.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "reliability.json"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(root: Path) -> tuple[subprocess.Popen, str]:
    import requests

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow = str(Path(sys.executable).parent / "mlflow")
    process = subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "art")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except requests.exceptions.RequestException:
            pass
        if process.poll() is not None:
            raise RuntimeError("mlflow server exited while starting")
        time.sleep(0.5)
    process.kill()
    raise TimeoutError("mlflow server did not come up in 180 s")


def _round(url: str, scores: list[float], *, queued: bool) -> dict:
    from mlflow.tracking import MlflowClient

    from mritune.platform.registry.promotion import CHAMPION, PENDING, promote
    from mritune.platform.tracking.tags import PROMOTION_TAG

    client = MlflowClient(url)
    model = f"bench-{'queued' if queued else 'unqueued'}-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    experiment_id = client.get_experiment_by_name("Default").experiment_id
    barrier = threading.Barrier(len(scores))
    outcomes: dict[str, tuple] = {}
    gate_s: list[float] = []

    def register(f1: float) -> None:
        own = MlflowClient(url)
        run = own.create_run(experiment_id)
        barrier.wait(timeout=60)
        version = own.create_model_version(model, source=f"{run.info.artifact_uri}/m", run_id=run.info.run_id, tags={
            "dataset_fingerprint": "fp", "metric.test_macro_f1": repr(f1), PROMOTION_TAG: PENDING}).version
        started = time.perf_counter()
        alias, previous, _ = promote(own, model, version, fingerprint="fp", value=f1, metric="test_macro_f1",
                                     mode="max", stale_after_s=120.0 if queued else 0.0)
        gate_s.append(time.perf_counter() - started)
        outcomes[version] = (f1, alias, previous)

    threads = [threading.Thread(target=register, args=(f1,)) for f1 in scores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    champion = client.get_model_version_by_alias(model, CHAMPION)
    best, holder, inconsistent = 0.0, None, 0
    for version in sorted(outcomes, key=int):  # what a sequential gate in version order decides
        f1, alias, previous = outcomes[version]
        inconsistent += (previous != holder) or (alias != (CHAMPION if f1 > best else "challenger"))
        if f1 > best:
            best, holder = f1, version
    return {"champion_is_best": float(champion.tags["metric.test_macro_f1"]) == max(scores),
            "inconsistent_decisions": inconsistent, "gate_s": gate_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="mritune-reliability-") as root:
        process, url = _start_server(Path(root))
        try:
            summary = {}
            rounds = [[round(rng.uniform(0.4, 0.95), 4) for _ in range(args.writers)] for _ in range(args.rounds)]
            for queued in (True, False):
                results = [_round(url, scores, queued=queued) for scores in rounds]  # the same scores for both
                gate = [s for result in results for s in result["gate_s"]]
                summary["queued" if queued else "unqueued"] = {
                    "rounds": args.rounds, "writers": args.writers,
                    "rounds_champion_not_best": sum(not r["champion_is_best"] for r in results),
                    "inconsistent_decisions": sum(r["inconsistent_decisions"] for r in results),
                    "gate_s_median": round(statistics.median(gate), 3), "gate_s_max": round(max(gate), 3),
                }
        finally:
            os.killpg(process.pid, 15)
            process.wait(timeout=30)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"concurrent_promotion": summary,
                                   "command": f"python benchmarks/reliability.py --rounds {args.rounds} "
                                              f"--writers {args.writers}"}, indent=2) + "\n")
    print(f"{'gate':<10} {'rounds champion != best':>24} {'inconsistent decisions':>23} {'gate s median/max':>18}")
    for name, row in summary.items():
        print(f"{name:<10} {row['rounds_champion_not_best']:>18} / {row['rounds']:<3} "
              f"{row['inconsistent_decisions']:>17} / {row['rounds'] * row['writers']:<3} "
              f"{row['gate_s_median']:>9} / {row['gate_s_max']}")


if __name__ == "__main__":
    main()
