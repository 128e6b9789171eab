"""Pull through a real `mlflow server` over HTTP (artifacts proxied by the server), as on a cluster. Slow."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow import MlflowClient

from mritune.deploy.model_files import read_model_folder
from mritune.deploy.model_logging import log_classifier_model
from mritune.deploy.registry_client import ModelNotFoundError, pull
from mritune.trainables.data.classes import CLASS_NAMES
from tests.deploy.conftest import CLASSIFIER, IMAGE_SIZE, build_tiny_classifier

pytestmark = pytest.mark.slow


def test_pull_over_http_by_alias(mlflow_server, tmp_path):
    keras_path = build_tiny_classifier(tmp_path / "model.keras")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        mlflow.set_tracking_uri(mlflow_server)
        try:
            experiment = MlflowClient(mlflow_server).create_experiment("http-pull")
            with mlflow.start_run(experiment_id=experiment) as run:
                mlflow.log_metric("test_macro_f1", 0.5)
                info = log_classifier_model(keras_path=str(keras_path), image_size=IMAGE_SIZE, class_names=CLASS_NAMES,
                                            metadata={"dataset_fingerprint": "http-fp"})
            version = mlflow.register_model(info.model_uri, CLASSIFIER).version
            MlflowClient(mlflow_server).set_registered_model_alias(CLASSIFIER, "champion", version)
        finally:
            mlflow.set_tracking_uri(None)

    record = pull(CLASSIFIER, out_dir=tmp_path / "pulled", tracking_uri=mlflow_server)
    assert (record["version"], record["aliases"], record["run_id"]) == (1, ["champion"], run.info.run_id)
    assert json.loads((tmp_path / "pulled" / "metadata.json").read_text())["dataset_fingerprint"] == "http-fp"
    assert read_model_folder(tmp_path / "pulled").kind == "classifier"
    with pytest.raises(ModelNotFoundError, match="has no alias 'staging'"):
        pull(f"{CLASSIFIER}@staging", out_dir=tmp_path / "other", tracking_uri=mlflow_server)
