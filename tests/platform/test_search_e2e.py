"""A whole search on a real local Ray with a real MLflow store: runs, artifacts, registry and the gate."""

from __future__ import annotations

import math

import pytest

from mritune.platform.run.runner import run_search
from mritune.platform.tracking.tags import WORKER_PID_TAG
from tests.platform.search_helpers import child_runs, tiny_spec


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MRITUNE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mritune-cache"))
    monkeypatch.chdir(tmp_path_factory.getbasetemp())


def test_classifier_search_records_every_trial_and_registers_the_best(local_ray, tmp_path):
    from mlflow.tracking import MlflowClient

    # Six trials, one at a time in one reused actor, so trials run after ASHA stopped the one before them in the same
    # worker process (their runs are checked below). Trials writing to one SQLite store at once:
    # tests/faults/test_tracking_faults.py (eight processes) and tests/platform/test_resume.py (two trials).
    spec = tiny_spec(tmp_path, overrides=("search.num_samples=6",))
    outcome = run_search(spec)
    client = MlflowClient(outcome.tracking_uri)

    parent = client.get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.info.artifact_uri.startswith((tmp_path / "mlartifacts").as_uri()), "artifacts beside the database"
    assert parent.data.params["algorithm"] == "gpyopt"
    assert parent.inputs.dataset_inputs, "the dataset is logged as the search's input"
    artifacts = {a.path for a in client.list_artifacts(outcome.parent_run_id)}
    assert {"results.csv", "best_config.yaml", "convergence.png", "spec.yaml", "searcher_observations.json"} <= artifacts
    import mlflow

    mlflow.set_tracking_uri(outcome.tracking_uri)
    observations = mlflow.artifacts.load_dict(f"runs:/{outcome.parent_run_id}/searcher_observations.json")
    assert len(observations["finished"]) == spec.search.num_samples, "every trial reached the searcher"

    children = child_runs(client, outcome.experiment_id, outcome.parent_run_id)
    assert len(children) == spec.search.num_samples
    assert {run.info.status for run in children} <= {"FINISHED", "KILLED"}
    steps_by_run = {}
    for run in children:
        history = client.get_metric_history(run.info.run_id, "val_macro_f1")
        steps = steps_by_run[run.info.run_id] = [m.step for m in history]
        assert steps == sorted(set(steps)) and steps[0] == 1, "one value per epoch, step = epoch"
        if run.info.status == "KILLED":
            assert run.data.tags.get("stopped_by") == "asha"
        assert run.data.tags["mritune.trial_id"]
    _assert_asha_stops_in_reused_actors_keep_one_complete_run_per_trial(outcome, children, steps_by_run, spec)

    registration = outcome.registration
    assert registration is not None and registration.alias == "champion"
    version = client.get_model_version(registration.model_name, registration.version)
    assert version.tags["dataset_fingerprint"]
    assert math.isfinite(float(version.tags["metric.test_macro_f1"]))
    assert str(client.get_model_version_by_alias(registration.model_name, "champion").version) == registration.version
    best_run = client.get_run(registration.run_id)
    assert best_run.info.status in {"FINISHED", "KILLED"}, "an ASHA-stopped trial may hold the best checkpoint"
    assert "registered_checkpoint" in {a.path for a in client.list_artifacts(registration.run_id)}
    # What is ranked is what is registered: the table's first row is the registered trial and epoch.
    top = outcome.table[0]
    assert (top["trial_id"], top["best_epoch"]) == (registration.trial_id, registration.epoch)
    assert float(version.tags["metric.val_macro_f1"]) == pytest.approx(top["val_macro_f1"])
    assert version.tags["epoch"] == str(top["best_epoch"])
    _assert_registered_with_a_guard(outcome, registration, "test_ood_flagged_fraction", tmp_path)

    # Another search on the same data (smaller: only its registration matters here): the gate decides by
    # test_macro_f1, never both champions.
    again = run_search(tiny_spec(tmp_path, overrides=("search.seed=1", "search.num_samples=2", "scheduler.max_t=1")))
    second = again.registration
    first_f1, second_f1 = registration.gate_value, second.gate_value
    champion = str(client.get_model_version_by_alias(registration.model_name, "champion").version)
    if second_f1 > first_f1:
        assert (second.alias, champion) == ("champion", second.version)
    else:
        assert (second.alias, champion) == ("challenger", registration.version)


def test_dcgan_search_logs_sample_grids_by_epoch_and_registers_the_generator(local_ray, tmp_path, capsys):
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    spec = tiny_spec(tmp_path, task="dcgan", overrides=("search.num_samples=2", "scheduler.name=fifo"))
    outcome = run_search(spec)
    client = MlflowClient(outcome.tracking_uri)
    children = child_runs(client, outcome.experiment_id, outcome.parent_run_id)
    assert len(children) == 2 and all(run.info.status == "FINISHED" for run in children)
    for run in children:
        for metric in ("fd", "swd", "fd_floor", "swd_floor"):
            history = client.get_metric_history(run.info.run_id, metric)
            assert [m.step for m in history] == [1, 2] and all(math.isfinite(m.value) for m in history), metric
        images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
        assert sum("samples" in path and path.endswith(".png") for path in images) >= 2, images
    registration = outcome.registration
    assert registration is not None and registration.model_name == "mritune-dcgan"
    assert registration.gate_metric == "test_fd" and math.isfinite(registration.gate_value)
    assert 0 < registration.gate_floor < registration.gate_value
    assert registration.gate_floor == registration.metrics["test_fd_floor"]
    _assert_floors_shown(outcome, registration, client, capsys.readouterr().out, Path(outcome.report))
    _assert_gate_used_test_images(outcome, spec, registration, tmp_path)
    guard = _assert_registered_with_a_guard(outcome, registration, "test_samples_ood_flagged_fraction", tmp_path)
    assert not guard.needs_penultimate, "the DCGAN's guard is fitted on the real images alone"


def _assert_asha_stops_in_reused_actors_keep_one_complete_run_per_trial(outcome, children, steps_by_run: dict,
                                                                        spec) -> None:
    """Every trial has exactly one child run holding its epochs (``steps_by_run``: its val_macro_f1 steps) and its
    true final status, also a trial that ran in the reused actor (worker process) of an ASHA-stopped trial."""
    runs = {run.data.tags["mritune.trial_id"]: run for run in children}
    assert len(runs) == len(children) == len(outcome.table), "every trial has exactly one child run"
    epochs_by_trial = {row["trial_id"]: row["epochs"] for row in outcome.table}
    by_actor: dict[str, list[tuple[int, str]]] = {}
    for trial_id, run in runs.items():
        epochs = epochs_by_trial[trial_id]
        assert steps_by_run[run.info.run_id] == list(range(1, epochs + 1)), trial_id
        assert run.info.status == ("FINISHED" if epochs == spec.epochs else "KILLED"), (trial_id, epochs)
        by_actor.setdefault(run.data.tags[WORKER_PID_TAG], []).append((run.info.start_time, run.info.status))
    assert any(run.info.status == "KILLED" for run in runs.values()), "ASHA stopped no trial: nothing was tested"
    in_order = [sorted(trials) for trials in by_actor.values()]  # by start time
    reused_after_kill = any(earlier[1] == "KILLED" for trials in in_order for earlier in trials[:-1])
    assert reused_after_kill, f"no trial ran in the actor of an ASHA-stopped trial: {by_actor}"


def _assert_floors_shown(outcome, registration, client, console: str, report: Path) -> None:
    """Every view shows the DCGAN's score beside its real-vs-real floor: the console's trial lines, the parent
    run's description, the version's description and tags, the report's summary, table and decision."""
    from mritune.platform.views.outcome import test_summary

    top = outcome.table[0]
    val = f"fd {top['fd']:.4f}, floor {top['fd_floor']:.4g}"
    assert outcome.floor_metric == "fd_floor"
    assert sum(f"completed 2 epochs: {val}" in line for line in console.splitlines()) == 1, console
    test = f"test_fd {registration.gate_value:.4f}, floor {registration.gate_floor:.4g}"
    assert test in test_summary(registration)
    assert val in client.get_run(outcome.parent_run_id).data.tags["mlflow.note.content"]
    version = client.get_model_version(registration.model_name, registration.version)
    assert (f"Test test_fd {registration.gate_value:.4g}, floor {registration.gate_floor:.4g}." in version.description
            and f"chosen on validation fd {top['fd']:.4g}, floor {top['fd_floor']:.4g}" in version.description)
    assert float(version.tags["metric.test_fd_floor"]) == registration.gate_floor
    assert float(version.tags["metric.fd_floor"]) == top["fd_floor"]
    page = report.read_text()
    assert "<th>fd_floor</th>" in page and f"{top['fd']:.4f}, floor {top['fd_floor']:.4g} (trial" in page
    assert test in page, "the champion decision shows the gate's floor"


def _assert_registered_with_a_guard(outcome, registration, metric: str, tmp_path):
    """The registered model holds its OOD guard, and the share it flags is logged with the test metrics."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from mritune.deploy.model_files import read_model_folder
    from mritune.deploy.ood_guard import load_guard

    client = MlflowClient(outcome.tracking_uri)
    (logged,) = client.get_metric_history(registration.run_id, metric)
    gate = client.get_metric_history(registration.run_id, registration.gate_metric)
    assert 0.0 <= logged.value <= 1.0 and logged.value == pytest.approx(registration.metrics[metric])
    assert logged.step == registration.epoch and logged.step in {m.step for m in gate}, "logged with the test metrics"
    mlflow.set_tracking_uri(outcome.tracking_uri)
    folder = mlflow.artifacts.download_artifacts(f"models:/{registration.model_name}/{registration.version}",
                                                 dst_path=str(tmp_path / f"guarded-{registration.model_name}"))
    guard_path = read_model_folder(folder).guard_path
    assert guard_path is not None
    return load_guard(guard_path)


def _assert_gate_used_test_images(outcome, spec, registration, tmp_path) -> None:
    """The DCGAN's gate value is the registered generator's FD against the test split, not the validation one."""
    import dataclasses
    from pathlib import Path

    import keras
    import mlflow

    from mritune.platform.run.runner import load_data
    from mritune.trainables.dcgan.evaluation import generator_test_evaluation

    mlflow.set_tracking_uri(outcome.tracking_uri)
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{registration.model_name}/{registration.version}",
                                                      dst_path=str(tmp_path / "generator")))
    generator = keras.saving.load_model(next(folder.rglob("*.keras")), compile=False, safe_mode=True)
    data = load_data(spec)
    settings = {"image_size": 32, "latent_dim": 16}
    on_test = generator_test_evaluation(generator, data, out_dir=tmp_path / "t", **settings).metrics["test_fd"]
    val_as_test = dataclasses.replace(data, x_test=data.x_val, y_test=data.y_val)
    on_val = generator_test_evaluation(generator, val_as_test, out_dir=tmp_path / "v", **settings).metrics["test_fd"]
    assert registration.gate_value == pytest.approx(on_test, rel=1e-5)
    assert on_val != pytest.approx(on_test, rel=1e-5)


def test_a_time_budget_stops_the_search_and_every_run_ends_with_a_final_status(local_ray, tmp_path):
    from mlflow.tracking import MlflowClient

    spec = tiny_spec(tmp_path, overrides=("search.num_samples=200", "search.time_budget_s=35", "scheduler.name=fifo",
                                          "search.algorithm=tpe", "search.options={n_initial_points: 2}"))
    outcome = run_search(spec)
    client = MlflowClient(outcome.tracking_uri)
    assert client.get_run(outcome.parent_run_id).info.status == "FINISHED"
    children = child_runs(client, outcome.experiment_id, outcome.parent_run_id)
    assert 0 < len(children) < spec.search.num_samples, "the budget, not num_samples, ended the search"
    assert all(run.info.status in {"FINISHED", "KILLED"} for run in children), [r.info.status for r in children]
    stopped = [run for run in children if run.data.tags.get("mritune.closed_by") == "search_end"]
    assert all(run.info.status == "KILLED" for run in stopped)


def test_a_search_that_fails_after_training_ends_its_runs_failed_not_running(local_ray, tmp_path):
    """MLflow refuses a model name with '/': the registration fails after every trial trained.

    The spec check refuses that name since issue 12, so the spec is built around it (model_copy skips validation),
    standing for any registry refusal the spec cannot foresee.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    spec = tiny_spec(tmp_path, overrides=("search.num_samples=2", "scheduler.name=fifo", "scheduler.max_t=1"))
    spec = spec.model_copy(update={"registry": spec.registry.model_copy(update={"model_name": "team/classifier"})})
    with pytest.raises(MlflowException):
        run_search(spec)
    client = MlflowClient(spec.tracking.uri)
    experiment_id = client.get_experiment_by_name(spec.experiment).experiment_id
    [parent] = client.search_runs([experiment_id], "tags.`mritune.role` = 'search'")
    assert parent.info.status == "FAILED"
    assert parent.data.tags["mritune.end_reason"].startswith("MlflowException")
    children = child_runs(client, experiment_id, parent.info.run_id)
    assert len(children) == 2 and all(run.info.status != "RUNNING" for run in children)
