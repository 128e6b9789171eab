"""Data-layer timings: synthesize the 6400-image dataset, load it (decode + hash), load it again (cache).

Run:  nice -n 10 python benchmarks/data_load.py [--n 6400] [--size 128]
Prints a markdown table and writes benchmarks/results/data_load.json. Everything lives in a temporary folder
(dataset and cache) that is deleted afterwards. Targets from the issue: synth < 90 s, first load < 15 s,
cached load < 2 s on 2 cores. The first load reads files the synthesis just wrote, so they come from the page
cache (as they would on a second run of a search); a cold disk read is not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "data_load.json"


_CPU_SECONDS: dict[str, float] = {}  # step name -> CPU seconds of this process (all threads)


def _timed(fn, name: str = ""):
    """Wall seconds; CPU seconds go to _CPU_SECONDS, because on a shared machine wall time measures the neighbours."""
    start, cpu_start = time.perf_counter(), time.process_time()
    value = fn()
    _CPU_SECONDS[name] = round(time.process_time() - cpu_start, 2)
    return value, time.perf_counter() - start


def run(n: int, size: int) -> dict:
    from mritune.trainables.data.atrophy import template_slices
    from mritune.trainables.data.loading import inspect_dataset, load_dataset
    from mritune.trainables.data.synthetic import synthesize_dataset

    with tempfile.TemporaryDirectory(prefix="mritune-bench-") as tmp:
        _, template_s = _timed(template_slices, "template")  # once per process; included in a CLI synth run
        root, synth_s = _timed(lambda: synthesize_dataset(Path(tmp) / "synthetic", n=n, seed=0, size=size), "synth")
        cache = Path(tmp) / "cache"
        first, first_s = _timed(lambda: load_dataset(root, image_size=size, cache_dir=cache), "first_load")
        second, cached_s = _timed(lambda: load_dataset(root, image_size=size, cache_dir=cache), "cached_load")
        _, inspect_s = _timed(lambda: inspect_dataset(root), "inspect")
        assert second.fingerprint == first.fingerprint
    return {
        "n": n,
        "size": size,
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "template_s": round(template_s, 2),
        "synth_s": round(synth_s + template_s, 2),
        "first_load_s": round(first_s, 2),
        "cached_load_s": round(cached_s, 3),
        "inspect_s": round(inspect_s, 2),
        "cached_over_first": round(cached_s / first_s, 4),
        "cpu_s": {**_CPU_SECONDS, "synth": round(_CPU_SECONDS["synth"] + _CPU_SECONDS["template"], 2)},
        "targets_s": {"synth_s": 90, "first_load_s": 15, "cached_load_s": 2},
    }


def _table(result: dict) -> str:
    cpu = result["cpu_s"]
    rows = [
        ("synthesize (incl. template)", result["synth_s"], cpu["synth"], 90),
        ("first load (decode + hash)", result["first_load_s"], cpu["first_load"], 15),
        ("cached load", result["cached_load_s"], cpu["cached_load"], 2),
        ("inspect (decode all)", result["inspect_s"], cpu["inspect"], None),
    ]
    lines = [f"{result['n']} images at {result['size']}x{result['size']}, {result['cpus']} CPUs, "
             f"load average {result['load_average_1m']:.1f}", "",
             "| step | wall s | CPU s (all threads) | target wall s | wall ratio to first load |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, seconds, cpu_seconds, target in rows:
        target_text = f"< {target}" if target else "-"
        ratio = seconds / result["first_load_s"]
        lines.append(f"| {name} | {seconds} | {cpu_seconds} | {target_text} | {ratio:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6400)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    result = run(args.n, args.size)
    print(_table(result))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
