"""Tiny search specs and MLflow queries shared by the platform's end-to-end tests."""

from __future__ import annotations

from pathlib import Path

from mritune.platform.spec.config import SearchSpec, apply_overrides, parse_spec
from mritune.platform.tracking.trial_runs import child_runs  # noqa: F401  (the e2e tests import it from here)
from tests.mlflow_stores import sqlite_store


def tiny_spec(tmp_path: Path, *, task: str = "classifier", overrides: tuple[str, ...] = ()) -> SearchSpec:
    """A search small enough for 2 CPUs: 32 px synthetic images, 2 epochs, 4 trials; no re-runs before registering
    (``promotion.rerun_top_k=0``; the re-run tests turn them on with overrides); its SQLite tracking store in
    ``tmp_path``, made empty there if absent (``tests/mlflow_stores.py``).

    One trial at a time (``search.max_concurrent=1``): every trial slot is a Ray worker process that imports
    TensorFlow (about 6 s of CPU) before its first trial, while the suite already keeps both cores busy; the tests
    about concurrent trials (two in flight when a driver dies, trials on two nodes, the report's slots) ask for
    ``search.max_concurrent=2``.
    """
    if task == "classifier":
        space = {"learning_rate": {"loguniform": [1e-3, 1e-2]}, "dense_units": {"choice": [8, 16]}}
        trainable = {"backbone": "small_cnn", "image_size": 32, "batch_size": 32}
    else:
        space = {"lr_g": {"loguniform": [1e-4, 1e-3]}, "lr_d": {"loguniform": [2e-4, 2e-3]}}
        trainable = {"image_size": 32, "batch_size": 32, "base_filters": 8, "latent_dim": 16}
    raw = {
        "name": f"tiny-{task}",
        "task": task,
        "data": {"synthetic": {"n": 200, "size": 32, "seed": 0}},
        "search": {"algorithm": "gpyopt", "options": {"n_initial_points": 2}, "num_samples": 4,
                   "max_concurrent": 1, "seed": 0, "space": space},
        "scheduler": {"name": "asha", "max_t": 2, "grace_period": 1, "reduction_factor": 2},
        "resources": {"cpu": 1, "gpu": 0},
        "tracking": {"uri": sqlite_store(tmp_path / "mlruns.db"), "experiment": f"test-{task}"},
        "storage_path": str(tmp_path / "ray_results"),
        "promotion": {"rerun_top_k": 0},
        "trainable": trainable,
    }
    return parse_spec(apply_overrides(raw, list(overrides)))


# The finished search test_search_report and test_rerun_search read: random draws, so ASHA's rungs stop some of
# six trials, and the two best re-run on two new seeds before registering.
REPORTED_RERUN_SEARCH = ("search.num_samples=6", "search.max_concurrent=2", "scheduler.max_t=4",
                         "search.algorithm=random", "promotion.rerun_top_k=2", "promotion.rerun_seeds=2")
_FINISHED: dict[tuple[str, tuple[str, ...]], tuple] = {}


def reported_rerun_search_root(tmp_path_factory) -> Path:
    """Where the search test_search_report and test_rerun_search share runs (the session's temporary root)."""
    return tmp_path_factory.getbasetemp() / "reported-rerun-search"


def shared_search(root: Path, overrides: tuple[str, ...]):
    """(spec, outcome) of a finished tiny classifier search with these overrides, run in ``root`` on first use and
    kept for the rest of this test process.

    For test modules that only read a search: tests/fixtures_scheduling.py puts the modules sharing one on the same
    xdist worker, so it runs once per test run. The caller's module fixture must have the embedded Ray up (it asks
    for ``local_ray``); ``root`` is where the first caller wants it (a session temporary folder).
    """
    from mritune.platform.run.runner import run_search

    key = ("classifier", tuple(overrides))
    if key not in _FINISHED:
        root.mkdir(parents=True, exist_ok=True)
        spec = tiny_spec(root, overrides=overrides)
        _FINISHED[key] = spec, run_search(spec)
    return _FINISHED[key]
