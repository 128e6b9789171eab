"""Where the default test suite's CPU goes: README command 2's pytest line, with every process's CPU attributed to
the test its pytest-xdist worker was running at the time.

A thread polls /proc every 0.5 s (each process's CPU time, its parent and its titles: Ray names its workers
``ray::ImplicitFunc``, ``ray::IDLE`` ...); this file, loaded into the workers as a pytest plugin
(``-p suite_cpu``), writes when each test started and ended. A process's CPU goes to its nearest ancestor that is
a pytest worker, at the test that worker ran when it was spent; what has no such ancestor (kernel threads, the
daemons of `ray start` clusters that outlive their parent) is counted as unowned. Processes living less than
0.5 s are missed.

    python benchmarks/suite_cpu.py --out benchmarks/results/suite_cpu.json [extra pytest args]

Writes the wall time, pytest's exit code, CPU by module, by test (the 40 largest) and by kind of process, and how
many processes of each kind the tests started (those seen by the poller), and the trial processes by module.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest  # the dev extra installs it; the plugin below needs it, the script side only imports it

ROOT = Path(__file__).resolve().parents[1]
CLOCK_ENV = "MRITUNE_SUITE_CLOCK"
PYTEST = [sys.executable, "-m", "pytest", "-m", "not slow", "-n", "2", "--dist", "loadscope", "-q"]


# --- the pytest plugin (runs inside each xdist worker) ---------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # noqa: ARG001  (pytest's hook signature)
    """Append 'pid start end nodeid' for each test, setup to teardown (module fixtures included)."""
    start = time.time()
    yield
    with open(os.environ[CLOCK_ENV], "a") as clock:
        clock.write(f"{os.getpid()} {start:.2f} {time.time():.2f} {item.nodeid}\n")


# --- the /proc poller -----------------------------------------------------------------------------------------
class ProcessPoller(threading.Thread):
    """Samples every process's cumulative CPU time; keyed by pid and start time (pids are reused)."""

    def __init__(self, interval_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval_s, self.stopped, self.seen, self.scans = interval_s, threading.Event(), {}, 0

    def run(self) -> None:
        while not self.stopped.is_set():
            now = time.time()
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    self._sample(int(pid), now)
            self.scans += 1
            self.stopped.wait(self.interval_s)

    def _sample(self, pid: int, now: float) -> None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
        except OSError:  # ended between listing and reading
            return
        fields = stat[stat.rfind(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        record = self.seen.setdefault((pid, fields[19]), {"pid": pid, "ppid": int(fields[1]), "titles": [],
                                                          "samples": [], "first_scan": self.scans == 0})
        if cmd and cmd not in record["titles"]:
            record["titles"].append(cmd)
        if not record["samples"] or record["samples"][-1][1] != cpu:
            record["samples"].append((now, cpu))


# Ray worker processes that ran trials or re-runs (each imports TensorFlow: several seconds of CPU to start).
WORKLOAD_KINDS = ("ray::ImplicitFunc", "ray::_train_and_score")


def process_kind(titles: list[str]) -> str:
    ray_titles = [t.split()[0] for t in titles if t.startswith("ray::")]
    named = [t for t in ray_titles if t != "ray::IDLE"]
    if ray_titles:
        return named[-1] if named else "ray::IDLE"
    command = titles[0] if titles else "(kernel or unnamed)"
    for key in ("gcs_server", "raylet", "dashboard.py", "log_monitor", "monitor.py", "uvicorn", "chrom", "postgres",
                "weed", "multiprocessing"):
        if key in command:
            return key
    if "exec(eval(sys.stdin" in command:
        return "pytest worker"
    if "bin/mritune" in command:
        return "mritune " + (command.split()[1] if len(command.split()) > 1 else "")
    return Path(command.split()[0]).name[:30]


def attribute(records: list[dict], clock_file: Path) -> dict:
    """CPU by module, test and kind of process (see the module docstring)."""
    intervals = collections.defaultdict(list)
    for line in clock_file.read_text().splitlines():
        pid, start, end, node = line.split(" ", 3)
        intervals[int(pid)].append((float(start), float(end), node))
    for spans in intervals.values():
        spans.sort()
    by_pid = collections.defaultdict(list)
    for record in records:
        by_pid[record["pid"]].append(record)

    def owner(record: dict, depth: int = 0) -> int | None:
        if record["pid"] in intervals:
            return record["pid"]
        if depth > 30 or record["ppid"] <= 2:
            return None
        parents = [p for p in by_pid.get(record["ppid"], []) if p["samples"][0][0] <= record["samples"][0][0] + 1]
        return owner(parents[-1], depth + 1) if parents else None

    def test_at(worker: int, when: float) -> str:
        spans = intervals[worker]
        index = bisect.bisect_right([s for s, _, _ in spans], when) - 1
        return spans[index][2] if index >= 0 and when <= spans[index][1] + 1.0 else "(between tests)"

    by_test, by_kind, processes, unowned = collections.Counter(), collections.Counter(), collections.Counter(), 0.0
    workload_processes = collections.Counter()
    for record in records:
        worker, kind = owner(record), process_kind(record["titles"])
        processes[kind] += worker is not None
        if worker is not None and kind.startswith(WORKLOAD_KINDS):
            workload_processes[test_at(worker, record["samples"][0][0]).split("::")[0]] += 1
        previous = record["samples"][0][1] if record["first_scan"] else 0.0
        for when, cpu in record["samples"][1 if record["first_scan"] else 0:]:
            spent, previous = cpu - previous, cpu
            if worker is None:
                unowned += spent
                continue
            by_test[test_at(worker, when)] += spent
            by_kind[kind] += spent
    by_module = collections.Counter()
    for test, spent in by_test.items():
        by_module[test.split("::")[0]] += spent
    def rounded(counter: collections.Counter, n: int | None = None) -> dict:
        return {key: round(value, 1) for key, value in counter.most_common(n)}

    return {"cpu_owned_s": round(sum(by_test.values()), 1), "cpu_unowned_s": round(unowned, 1),
            "by_module": rounded(by_module), "by_test": rounded(by_test, 40), "by_kind": rounded(by_kind),
            "processes_by_kind": dict(processes.most_common()),
            "trial_processes_by_module": dict(workload_processes.most_common())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    args, pytest_args = parser.parse_known_args()
    clock = Path(tempfile.mkdtemp(prefix="suite-cpu-")) / "clock.txt"
    clock.touch()
    env = {**os.environ, CLOCK_ENV: str(clock),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH")]))}
    poller = ProcessPoller()
    poller.start()
    started = time.time()
    done = subprocess.run([*PYTEST, "-p", "suite_cpu", *pytest_args], cwd=ROOT, env=env)
    wall = time.time() - started
    poller.stopped.set()
    poller.join()
    summary = {"command": " ".join(PYTEST[2:] + ["-p", "suite_cpu", *pytest_args]), "pytest_exit_code": done.returncode,
               "wall_s": round(wall, 1), "cpus": os.cpu_count(), **attribute(list(poller.seen.values()), clock)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wall {wall:.0f} s, CPU owned {summary['cpu_owned_s']:.0f} s, unowned {summary['cpu_unowned_s']:.0f} s; "
          f"wrote {args.out}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
