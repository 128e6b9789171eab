"""Record the real classifier's learning curves on a fixed set of configurations: the table the replay reads.

As LCBench, NAS-Bench-201 and FCNet tabulate their models, this trains the quick workload's classifier (the
shipped ``configs/classifier-quick.yaml``: its space, its fixed settings, its synthetic data, at the ``--fast``
resolution of 32 px and 960 images unless ``--set`` says otherwise) on the first ``--configs`` points of a
scrambled Sobol sequence over the spec's space, once per training seed, for ``--epochs`` epochs, and stores for
every epoch: val macro-F1, val loss, test macro-F1 and the epoch's wall seconds (from the previous report to this
one: training, the batch-norm recomputation, validation, the checkpoint; the first epoch includes building and
tracing the model).

The table is a JSON-lines file: a header line (space, fixed settings, data, dataset fingerprint, command,
metric names) and one line per (configuration, seed), appended as each training ends, with the mritune commit it
was recorded at. Recording takes hours: an interrupted run picks up where it stopped (rows already there are
skipped, a different space or dataset is refused), and ``--max-runs`` ends the process after that many trainings
(exit 3 while work is left, 0 when the table is complete) so a shell loop can restart it with fresh memory:

    until python benchmarks/curves/record.py --configs 256 --seeds 0,1; do [ $? -eq 3 ] || break; done

Each recorder trains on one thread; on a machine with a second free core, a second recorder with ``--reverse``
takes the rows left from the other end (each skips a row the other has appended meanwhile).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TABLE = Path(__file__).resolve().parent / "classifier_32px.jsonl"
# The --fast quick start's data and resolution (platform/run/quickstart.py's overrides of the quick spec).
FAST_RESOLUTION = ("data.synthetic.n=960", "data.synthetic.size=32", "trainable.image_size=32")
EXIT_MORE_TO_DO = 3


def _table_format():
    from mritune.search.replay import FORMAT_VERSION, METRIC_NAMES  # the reader's definition of the format

    return FORMAT_VERSION, METRIC_NAMES


def load_recording_spec(spec_path: Path, overrides: list[str]):
    from mritune.platform.spec.config import load_spec

    return load_spec(spec_path, [*FAST_RESOLUTION, *overrides])


def table_header(spec, data, args) -> dict:
    from mritune.search.space_ray import convert_ray_space
    from mritune.platform.run.runner import param_space

    space = convert_ray_space(param_space(spec))
    fixed = {k: v for k, v in spec.fixed_config().items() if k not in spec.search.space}
    fixed["epochs"] = args.epochs
    table_format, metrics = _table_format()
    return {
        "kind": "header", "format": table_format, "task": spec.task,
        "space": spec.search.space, "fixed": fixed, "data": spec.data.model_dump(mode="json"),
        "dataset_fingerprint": data.fingerprint, "unit_dim": space.dim, "epochs": args.epochs,
        "sequence": {"kind": "sobol", "scramble": True, "seed": args.sobol_seed},
        "metrics": list(metrics), "spec": str(Path(args.spec).resolve().relative_to(ROOT)),
        "command": "python benchmarks/curves/record.py " + " ".join(sys.argv[1:]),
    }


def sobol_points(dim: int, count: int, seed: int):
    """The first ``count`` points of a scrambled Sobol sequence (the same for any ``count``: a table can grow)."""
    from scipy.stats import qmc

    sampler = qmc.Sobol(d=dim, scramble=True, seed=seed)
    total = 1 << max(0, (count - 1).bit_length())  # draw a power of two, keep the first count
    return sampler.random(total)[:count]


def read_table(path: Path) -> tuple[dict | None, dict[tuple[int, int], dict]]:
    if not path.exists():
        return None, {}
    header, rows = None, {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry.get("kind") == "header":
            header = entry
        else:
            rows[(entry["config_index"], entry["seed"])] = entry
    return header, rows


def check_same_table(old: dict, new: dict) -> None:
    for key in ("task", "space", "fixed", "data", "dataset_fingerprint", "sequence", "epochs", "metrics"):
        if old.get(key) != new.get(key):
            raise SystemExit(f"error: {key} differs from the table's header; record into another --out file")


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def record_one(config: dict, data, epochs: int) -> dict:
    """One training of ``config``: per-epoch [val macro-F1, val loss, test macro-F1, seconds], and how it ended."""
    from mritune.trainables.classifier.training import train_classifier
    from mritune.trainables.reporting import TrainingDiverged
    from mritune.trainables.runtime import free_keras_state

    free_keras_state()
    curve: list[list[float]] = []
    last = [time.perf_counter()]

    def report(epoch_report) -> None:
        now = time.perf_counter()
        m = epoch_report.metrics
        curve.append([round(m["val_macro_f1"], 4), round(m["val_loss"], 4), round(m["test_macro_f1"], 4),
                      round(now - last[0], 3)])
        last[0] = now

    ending = "completed"
    with tempfile.TemporaryDirectory(prefix="mritune-curves-") as workdir:
        try:
            train_classifier({**config, "epochs": epochs}, data, report, workdir=workdir, evaluate_test=False,
                             test_every_epoch=True)
        except TrainingDiverged as exc:
            ending = f"diverged: {exc}"
    return {"curve": curve, "ending": ending}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_TABLE))
    parser.add_argument("--spec", default=str(ROOT / "configs" / "classifier-quick.yaml"))
    parser.add_argument("--set", action="append", default=[], help="spec override, as mritune search --set")
    parser.add_argument("--configs", type=int, default=256)
    parser.add_argument("--seeds", default="0,1", help="training seeds, comma-separated")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--sobol-seed", type=int, default=0)
    parser.add_argument("--max-runs", type=int, default=0, help="stop after this many trainings (0: no limit)")
    parser.add_argument("--reverse", action="store_true",
                        help="take the rows left from the end: a second recorder beside a first (each one-threaded)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    seeds = [int(s) for s in args.seeds.split(",")]

    from mritune.platform.run.runner import load_data, param_space
    from mritune.search.space_ray import convert_ray_space
    from mritune.trainables.runtime import configure_runtime

    spec = load_recording_spec(Path(args.spec), args.set)
    data = load_data(spec)
    header = table_header(spec, data, args)
    out = Path(args.out)
    old_header, rows = read_table(out)
    if old_header is None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(header) + "\n")
    else:
        check_same_table(old_header, header)
    configure_runtime(cpus=1)  # one thread: the table's seconds are one core's, whatever else the machine runs
    space = convert_ray_space(param_space(spec))
    points = sobol_points(space.dim, args.configs, args.sobol_seed)
    commit, done_now = git_commit(), 0
    todo = [(i, s) for i in range(args.configs) for s in seeds if (i, s) not in rows]
    if args.reverse:
        todo.reverse()
    print(f"{len(rows)} rows recorded, {len(todo)} to go -> {out}", flush=True)
    for index, seed in todo:
        if args.max_runs and done_now >= args.max_runs:
            sys.exit(EXIT_MORE_TO_DO)
        if (index, seed) in read_table(out)[1]:  # recorded meanwhile by a recorder working from the other end
            continue
        config = {k: v for k, v in space.decode(points[index]).items() if k in spec.search.space}
        started = time.perf_counter()
        result = record_one({**header["fixed"], **config, "seed": seed}, data, args.epochs)
        row = {"config_index": index, "seed": seed, "config": config,
               **result, "wall_s": round(time.perf_counter() - started, 2), "commit": commit}
        with out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        done_now += 1
        best = max((epoch[0] for epoch in row["curve"]), default=float("nan"))
        print(f"[{len(rows) + done_now}/{len(rows) + len(todo)}] config {index} seed {seed}: best val macro-F1 "
              f"{best:.3f} in {row['wall_s']:.1f} s ({result['ending'][:40]})", flush=True)


if __name__ == "__main__":
    main()
