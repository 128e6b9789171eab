"""What is ranked is what is registered: a trial whose last epoch is worse than its best registers the best epoch.

A real Tune run (local Ray) trains the real classifier for three epochs and writes real checkpoints; only the
reported search score is scripted (0.30, 0.60, 0.40), so that the best epoch is known. Ray's checkpoint manager,
the ranking, the results table, the test evaluation, MLflow and the registry are the platform's own.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.platform.search_helpers import tiny_spec

SCRIPTED_SCORES = {1: 0.30, 2: 0.60, 3: 0.40}


def _scripted_trainable(config: dict, data, observer_factory) -> None:
    """The classifier training, reporting a scripted val_macro_f1 and the real checkpoint of every epoch."""
    from ray import tune

    from mritune.trainables.classifier.training import train_classifier
    from mritune.trainables.reporting import EpochReport

    observer = observer_factory()
    observer.on_start(dict(config), tune.get_context().get_trial_id())

    def report(epoch_report: EpochReport) -> None:
        metrics = {**epoch_report.metrics, "val_macro_f1": SCRIPTED_SCORES[epoch_report.epoch]}
        observer.on_epoch(EpochReport(epoch=epoch_report.epoch, metrics=metrics))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(epoch_report.checkpoint_dir))

    train_classifier(config, data, report, workdir=tempfile.mkdtemp(), evaluate_test=False)
    observer.on_end("FINISHED", None, None)


def _predictions(keras_path: Path, images: np.ndarray) -> np.ndarray:
    import keras

    import mritune.trainables.layers  # noqa: F401

    model = keras.saving.load_model(keras_path, compile=False, safe_mode=True)
    return np.asarray(model.predict(images, verbose=0))


def test_a_trial_whose_last_epoch_is_worse_registers_its_best_epoch(local_ray, tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient
    from ray import tune

    from mritune.platform.tracking.ranking import checkpoint_config, rank_trials
    from mritune.platform.registry.registration import register_best
    from mritune.platform.run.runner import load_data
    from mritune.platform.tracking.trial_runs import MlflowTrialObserverFactory, ensure_experiment
    from mritune.platform.tracking.search_run import results_table
    from mritune.trainables.data.arrays import as_model_input
    from mritune.trainables.evaluation import evaluate_checkpoint

    monkeypatch.setenv("MRITUNE_CACHE_DIR", str(tmp_path / "cache"))
    spec = tiny_spec(tmp_path, overrides=("search.num_samples=1", "scheduler.name=fifo", "scheduler.max_t=3"))
    dataset = load_data(spec)
    uri = spec.tracking.uri
    experiment_id = ensure_experiment(spec.experiment, uri)
    client = MlflowClient(uri)
    parent_run_id = client.create_run(experiment_id, run_name="scripted").info.run_id
    factory = MlflowTrialObserverFactory(tracking_uri=uri, experiment_id=experiment_id, parent_run_id=parent_run_id,
                                         search_name=spec.name, system_metrics=False)
    trainable = tune.with_parameters(_scripted_trainable, data=dataset, observer_factory=factory)
    config = {"backbone": "small_cnn", "image_size": 32, "batch_size": 32, "dense_units": 8, "epochs": 3}
    results = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}), param_space=config,
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="scripted", verbose=0,
                                  checkpoint_config=checkpoint_config(metric="val_macro_f1", mode="max")),
    ).fit()

    ranked = rank_trials(results, metric="val_macro_f1", mode="max")
    row = results_table(ranked, metric="val_macro_f1")[0]
    assert (row["val_macro_f1"], row["best_epoch"], row["epochs"]) == (0.60, 2, 3)

    registration = register_best(spec=spec, ranked=ranked, tracking_uri=uri, experiment_id=experiment_id,
                                 parent_run_id=parent_run_id, dataset=dataset)
    assert registration is not None and (registration.trial_id, registration.epoch) == (row["trial_id"], 2)
    version = client.get_model_version(registration.model_name, registration.version)
    assert version.tags["epoch"] == "2" and version.tags["trial_id"] == row["trial_id"]
    assert float(version.tags["metric.val_macro_f1"]) == pytest.approx(row["val_macro_f1"])

    # The registered model is epoch 2's, not the last epoch's (which Ray keeps too, for resume).
    images = as_model_input(dataset.x_test[:16])
    mlflow.set_tracking_uri(uri)
    registered = Path(mlflow.artifacts.download_artifacts(f"models:/{registration.model_name}/{registration.version}",
                                                          dst_path=str(tmp_path / "pulled")))
    registered_predictions = _predictions(next(registered.rglob("*.keras")), images)
    with ranked[0].checkpoint.as_directory() as best, results[0].checkpoint.as_directory() as last:
        np.testing.assert_allclose(registered_predictions, _predictions(Path(best) / "model.keras", images),
                                   rtol=1e-5, atol=1e-6)
        assert not np.allclose(registered_predictions, _predictions(Path(last) / "model.keras", images))
        expected = evaluate_checkpoint(best, dataset, out_dir=tmp_path / "eval").metrics

    # The gate compares the registered checkpoint's test metrics; the trial's run has them at that epoch.
    assert registration.gate_metric == "test_macro_f1"
    assert registration.gate_value == pytest.approx(expected["test_macro_f1"])
    assert float(version.tags["metric.test_macro_f1"]) == pytest.approx(expected["test_macro_f1"], rel=1e-5)
    history = client.get_metric_history(registration.run_id, "test_macro_f1")
    assert [(m.step, round(m.value, 6)) for m in history] == [(2, round(expected["test_macro_f1"], 6))]
