"""Tiny search specs and MLflow queries shared by the platform's end-to-end tests."""

from __future__ import annotations

from pathlib import Path

from mritune.platform.spec.config import SearchSpec, apply_overrides, parse_spec
from mritune.platform.tracking.trial_runs import child_runs  # noqa: F401  (the e2e tests import it from here)


def tiny_spec(tmp_path: Path, *, task: str = "classifier", overrides: tuple[str, ...] = ()) -> SearchSpec:
    """A search small enough for 2 CPUs: 32 px synthetic images, 2 epochs, 4 trials; no re-runs before registering
    (``promotion.rerun_top_k=0``; the re-run tests turn them on with overrides)."""
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
                   "max_concurrent": 2, "seed": 0, "space": space},
        "scheduler": {"name": "asha", "max_t": 2, "grace_period": 1, "reduction_factor": 2},
        "resources": {"cpu": 1, "gpu": 0},
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlruns.db", "experiment": f"test-{task}"},
        "storage_path": str(tmp_path / "ray_results"),
        "promotion": {"rerun_top_k": 0},
        "trainable": trainable,
    }
    return parse_spec(apply_overrides(raw, list(overrides)))
