"""The search report at 1,000 trials: time to write it, and what each bound in it costs or changes.

    python benchmarks/report_scale.py                  # 1,000 synthetic trials in SQLite (~4 min to write them)
    python benchmarks/report_scale.py --trials 300 --full-fanova

The search is ``tests/platform/synthetic_search.py``'s: a finished 1,000-trial ASHA search written into a real
SQLite MLflow store (trial runs with their tags, params and per-epoch metric). Side by side in one run:

- ``report``: ``write_search_report`` as ``mritune report`` runs it (wall and process CPU seconds, each part);
- ``histories``: reading every trial's metric history in bulk (``search_report/histories.py``) against one
  ``get_metric_history`` call per trial (the report before issue 25);
- ``fanova``: importance on the seeded sample of ``importance.MAX_TRIALS`` scored trials against all of them
  (``--full-fanova``; it took 215 s at 1,000 trials), and how far the two rankings agree.

Writes ``benchmarks/results/report_scale.json``. The machine's load average is recorded beside the times: the
2-core machine is shared, so wall time can be several times the CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT))


class Timer:
    def __init__(self) -> None:
        self.parts: dict[str, dict] = {}

    def __call__(self, name: str, fn, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        value = fn(*args, **kwargs)
        self.parts[name] = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
        print(f"{name:28s} wall {self.parts[name]['wall_s']:7.1f} s  cpu {self.parts[name]['cpu_s']:7.1f} s",
              flush=True)
        return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--folder", default=None, help="reuse a synthetic search written there earlier")
    parser.add_argument("--full-fanova", action="store_true", help="also fANOVA on every scored trial (slow)")
    parser.add_argument("--out", default=str(RESULTS / "report_scale.json"))
    args = parser.parse_args()

    from tests.platform.synthetic_search import synthetic_search

    timer = Timer()
    folder = Path(args.folder or tempfile.mkdtemp(prefix="report-scale-"))
    state_file = folder / "ray_results" / "scale-synthetic" / "mritune_search.json"
    if state_file.exists():
        experiment_path = state_file.parent
    else:
        experiment_path = timer("write synthetic runs", synthetic_search, folder, trials=args.trials).experiment_path
    load_before = os.getloadavg()
    report_timer = Timer()
    files = report_timer("write_search_report", _report, experiment_path)
    record, parts = _parts(experiment_path, timer)
    payload = {"trials": len(record.trials), "folder": str(folder), "load_average_before": load_before,
               "load_average_after": os.getloadavg(), "report": report_timer.parts["write_search_report"],
               "parts": parts, "html_bytes": files.html.stat().st_size,
               "png_bytes": {k: p.stat().st_size for k, p in files.images.items()}}
    if args.full_fanova:
        payload["fanova"] = _fanova_agreement(record, timer)
    payload["timings"] = timer.parts
    Path(args.out).write_text(json.dumps(payload, indent=1))
    print(json.dumps({k: v for k, v in payload.items() if k != "png_bytes"}, indent=1))


def _report(experiment_path: Path):
    from mritune.platform.views.search_report.build import write_search_report

    return write_search_report(experiment_path)


def _parts(experiment_path: Path, timer: Timer):
    """Each stage of the report timed on its own, and the per-run history reads it replaced."""
    from mlflow.tracking import MlflowClient

    from mritune.platform.spec.config import parse_spec
    from mritune.platform.views.search_report import plots
    from mritune.platform.views.search_report.collect import collect_search
    from mritune.platform.tracking.trial_runs import child_runs
    from mritune.platform.views.search_report.histories import metric_histories
    from mritune.platform.views.search_report.importance import param_importance

    state = json.loads((experiment_path / "mritune_search.json").read_text())
    spec = parse_spec(state["spec"])
    record = timer("collect (bulk histories)", collect_search, spec=spec, tracking_uri=state["tracking_uri"],
                   experiment_id=state["experiment_id"], parent_run_id=state["parent_run_id"],
                   ui_url="http://127.0.0.1:5000")
    client = MlflowClient(state["tracking_uri"])
    runs = child_runs(client, state["experiment_id"], state["parent_run_id"])
    ids = [r.info.run_id for r in runs]
    timer("histories: bulk", metric_histories, client, ids, spec.metric)
    timer("histories: one call per run", lambda: [client.get_metric_history(i, spec.metric) for i in ids])
    importance = timer("importance (sampled)", param_importance, record)
    out = Path(tempfile.mkdtemp(prefix="report-parts-"))
    timer("plot best_so_far", plots.best_so_far_plot, record, out / "a.png")
    timer("plot parallel_coordinates", plots.parallel_coordinates_plot, record, out / "b.png")
    timer("plot importance", plots.importance_plot, importance, out / "c.png")
    timer("plot learning_curves", plots.learning_curves_plot, record, out / "d.png")
    timer("plot timeline", plots.timeline_plot, record, out / "e.png")
    bulk, single = timer.parts["histories: bulk"], timer.parts["histories: one call per run"]
    parts = {"histories_bulk_over_per_run_wall": bulk["wall_s"] / single["wall_s"],
             "importance_sampled": importance.values, "importance_note": importance.note}
    return record, parts


def _fanova_agreement(record, timer: Timer) -> dict:
    from mritune.platform.views.search_report.importance import param_importance

    sampled = param_importance(record)
    full = timer("importance (all trials)", param_importance, record, max_trials=None)
    order_sampled, order_full = list(sampled.values), list(full.values)
    return {"sampled": sampled.values, "full": full.values, "same_top": order_sampled[:1] == order_full[:1],
            "same_top_two": set(order_sampled[:2]) == set(order_full[:2]),
            "max_abs_difference": max(abs(sampled.values[k] - full.values.get(k, 0.0)) for k in sampled.values),
            "sampled_over_full_cpu": timer.parts["importance (sampled)"]["cpu_s"]
            / timer.parts["importance (all trials)"]["cpu_s"]}


if __name__ == "__main__":
    main()
