"""The task registry: one entry per task that the spec schema, `mritune train`, the trainables and the gate read."""

from __future__ import annotations

import dataclasses

import pytest

from mritune.trainables.tasks import Task, get_task, register_task, task_names


def test_builtin_tasks_are_registered_in_a_stable_order():
    assert task_names() == ("classifier", "dcgan")


@pytest.mark.parametrize("name", ["classifier", "dcgan"])
def test_each_entry_is_complete_and_its_references_resolve(name):
    task = get_task(name)
    assert task.name == name
    assert task.search_metric in task.epoch_metrics
    assert set(task.progress_metrics) <= set(task.epoch_metrics)
    assert task.gate_metric.startswith("test_") and task.gate_mode in ("min", "max")
    assert task.model_file.endswith(".keras")
    assert task.config_class.from_dict({}).to_dict()["epochs"] >= 1
    assert callable(task.training_function()) and callable(task.checkpoint_evaluator())


def test_defaults_match_the_shared_names():
    classifier, dcgan = get_task("classifier"), get_task("dcgan")
    assert (classifier.search_metric, classifier.search_mode) == ("val_macro_f1", "max")
    assert (dcgan.search_metric, dcgan.search_mode) == ("fd", "min")
    assert (classifier.gate_metric, classifier.gate_mode, dcgan.gate_metric, dcgan.gate_mode) == (
        "test_macro_f1", "max", "test_fd", "min")
    assert (classifier.model_name, dcgan.model_name) == ("mritune-classifier", "mritune-dcgan")
    assert "val_f1_ModerateDemented" in classifier.epoch_metrics


def test_each_dcgan_distance_has_its_floor_and_the_classifier_none():
    classifier, dcgan = get_task("classifier"), get_task("dcgan")
    assert [dcgan.floor_of(m) for m in ("fd", "swd", "test_fd", "test_swd")] == [
        "fd_floor", "swd_floor", "test_fd_floor", "test_swd_floor"]
    assert dcgan.floor_of(dcgan.search_metric) in dcgan.epoch_metrics and dcgan.floor_of(dcgan.gate_metric)
    assert dcgan.floor_of("ms_ssim_diversity") is None and classifier.floor_of(classifier.search_metric) is None
    with pytest.raises(ValueError, match="a floor metric cannot be the search or gate metric"):
        dataclasses.replace(dcgan, search_metric="fd_floor")
    with pytest.raises(ValueError, match=r"floor metrics \['nowhere'\] of epoch metrics are not in epoch_metrics"):
        dataclasses.replace(dcgan, floor_metrics={"fd": "nowhere"})


def test_unknown_task_and_conflicting_registration_are_refused():
    with pytest.raises(ValueError, match="unknown task 'gan'; choose one of classifier, dcgan"):
        get_task("gan")
    assert register_task(get_task("dcgan")) is get_task("dcgan")  # the same entry again: a no-op
    with pytest.raises(ValueError, match="already registered"):
        register_task(dataclasses.replace(get_task("dcgan"), model_name="other"))
    with pytest.raises(ValueError, match="search_metric"):
        dataclasses.replace(get_task("dcgan"), search_metric="val_macro_f1")
    assert isinstance(get_task("dcgan"), Task)


def test_more_task_packages_come_from_the_environment(tmp_path, monkeypatch):
    """MRITUNE_TASK_PACKAGES: the benchmark's replay task, registered in a fresh process as trial workers do."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parents[2] / "benchmarks"
    env = {**os.environ, "MRITUNE_TASK_PACKAGES": "replay_task", "PYTHONPATH": str(benchmarks)}
    out = subprocess.run([sys.executable, "-c", "from mritune.trainables.tasks import task_names, get_task; "
                          "print(task_names(), get_task('replay').search_metric)"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "('classifier', 'dcgan', 'replay') val_macro_f1"
    monkeypatch.setenv("MRITUNE_TASK_PACKAGES", "no_such_task_module")
    with pytest.raises(ValueError, match="MRITUNE_TASK_PACKAGES names 'no_such_task_module', which Python cannot "
                                         "import; fix the name or add its folder to PYTHONPATH"):
        get_task("classifier")
