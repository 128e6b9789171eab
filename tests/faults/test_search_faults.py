"""Fault scenarios 7 and 8 on real searches: every trial diverging, and a storage_path that cannot be written."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from tests.faults.checker import assert_nothing_lost, tune_trial_ids
from tests.platform.search_helpers import tiny_spec


def test_a_search_whose_every_trial_diverges_ends_failed_and_registers_nothing(local_ray, tmp_path):
    """Scenario 7: SGD at learning rate 1.0 with l2 1.0 overflows to a NaN loss in epoch 2 (TrainingDiverged)."""
    from mlflow.tracking import MlflowClient

    from mritune.platform.runner import run_search

    spec = tiny_spec(tmp_path, overrides=(
        "search.num_samples=2", "search.algorithm=random", "scheduler.name=fifo", "scheduler.max_t=2",
        "search.space.learning_rate={choice: [1.0]}", "trainable.optimizer=sgd", "trainable.l2=1.0",
        "trainable.class_weighting=none", "registry.model_name=fault-diverged"))
    outcome = run_search(spec)

    assert outcome.status == "FAILED" and outcome.registration is None, (outcome.table, outcome.registration)
    assert "no trial produced a usable val_macro_f1 (2 of 2 errored" in outcome.status_reason
    summary = assert_nothing_lost(outcome.tracking_uri, outcome.parent_run_id,
                                  trial_ids=tune_trial_ids(outcome.experiment_path), parent_status="FAILED")
    assert summary["runs"] == 2
    client = MlflowClient(outcome.tracking_uri)
    children = client.search_runs([outcome.experiment_id], f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    assert {run.info.status for run in children} == {"FAILED"}
    assert all("diverged" in run.data.tags["mritune.error"] for run in children)
    assert client.search_registered_models("name = 'fault-diverged'") == []


@contextlib.contextmanager
def unwritable_folder(parent: Path):
    """A full disk (a 64 KiB tmpfs, when this process may mount one: root), else a read-only folder."""
    folder = parent / "storage"
    folder.mkdir()
    if os.geteuid() == 0:  # root ignores permissions, but may mount
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
        try:
            yield folder, "No space left on device"
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o500)
        try:
            yield folder, "Permission denied"
        finally:
            folder.chmod(0o700)


def test_an_unwritable_storage_path_is_refused_before_any_trial_starts(tmp_path):
    """Scenario 8: one line naming storage_path, exit 2, and no run in the tracking store."""
    from mlflow.tracking import MlflowClient

    from mritune.platform.config import spec_to_yaml
    from mritune.platform.tracking import ensure_experiment

    spec = tiny_spec(tmp_path)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(spec_to_yaml(spec))
    experiment_id = ensure_experiment(spec.experiment, spec.tracking.uri)
    with unwritable_folder(tmp_path) as (folder, reason):
        result = subprocess.run(
            [sys.executable, "-c", "from mritune.platform.cli import main; main()", "search", str(spec_file),
             "--set", f"storage_path={folder / 'ray_results'}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == (f"error: storage_path {folder / 'ray_results'} cannot hold the search's "
                                     f"checkpoints ({reason}); choose a writable folder with free space")
    assert MlflowClient(spec.tracking.uri).search_runs([experiment_id]) == []
