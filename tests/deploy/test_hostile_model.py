"""Fault scenario 9: a hostile `.keras` file (a Lambda layer carrying Python code) registered as a model version is
refused by `mritune pull`, `predict` and `serve` with one line each, and its code never runs.

The Lambda's code touches a marker file when called: it runs once while the model is built here, and must not run
again in any of the three commands.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.deploy.conftest import IMAGE_SIZE, free_port, sqlite_store, subprocess_env

HOSTILE = "hostile-classifier"


def build_hostile_classifier(path: Path, marker: Path) -> Path:
    """A classifier-shaped model whose Lambda layer runs code (touches ``marker``) whenever it is called."""
    import keras

    from mritune.trainables.data.classes import CLASS_NAMES

    code = eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1]")  # noqa: S307 - the payload
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1))
    hidden = keras.layers.Flatten()(keras.layers.Lambda(code)(inputs))
    keras.Model(inputs, keras.layers.Dense(len(CLASS_NAMES), activation="softmax")(hidden)).save(path)
    return path


@pytest.fixture(scope="module")
def hostile_registry(tmp_path_factory) -> tuple[str, Path]:
    """A SQLite registry whose ``hostile-classifier@champion`` is the hostile model, logged as mritune logs one."""
    import mlflow

    from mritune.deploy.model_logging import log_classifier_model
    from mritune.trainables.data.classes import CLASS_NAMES

    root = tmp_path_factory.mktemp("hostile")
    marker = root / "payload-ran"
    keras_path = build_hostile_classifier(root / "hostile.keras", marker)
    with sqlite_store(root, "hostile") as (uri, client, experiment):
        with mlflow.start_run(experiment_id=experiment):
            info = log_classifier_model(keras_path=str(keras_path), image_size=IMAGE_SIZE, class_names=CLASS_NAMES,
                                        metadata={"dataset_fingerprint": "fp-hostile"})
        version = mlflow.register_model(info.model_uri, HOSTILE).version
        client.set_registered_model_alias(HOSTILE, "champion", version)
    marker.unlink()  # it ran while the model was built; from here on it must not run again
    return uri, marker


REFUSAL = ("Keras safe_mode refused it (Requested the deserialization of a `Lambda` layer whose `function` is a "
           "Python lambda)")


def test_pull_and_predict_refuse_a_lambda_layer(hostile_registry, tmp_path):
    from mritune.deploy.model_files import UnsafeModelError
    from mritune.deploy.predict import run_predict
    from mritune.deploy.registry_client import pull

    uri, marker = hostile_registry
    image = tmp_path / "scan.png"
    cv2.imwrite(str(image), np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8))
    with pytest.raises(UnsafeModelError, match=r"^refusing model .*hostile\.keras: ") as refused:
        pull(f"{HOSTILE}@champion", out_dir=tmp_path / "pulled", tracking_uri=uri)
    assert str(refused.value).endswith(REFUSAL) and "\n" not in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.png"]  # no --out folder, no staging left behind
    with pytest.raises(UnsafeModelError, match=REFUSAL.replace("(", r"\(").replace(")", r"\)")):
        run_predict([str(image)], model=f"models:/{HOSTILE}@champion", out=None, tracking_uri=uri, batch_size=4)
    assert not marker.exists(), "the Lambda layer's code ran"


def test_serve_refuses_a_lambda_layer_in_one_line_and_exits(hostile_registry, tmp_path):
    """The command line's view: exit 2, the refusal as the last line of stderr, no traceback, nothing served."""
    uri, marker = hostile_registry
    command = [sys.executable, "-c", "from mritune.platform.cli.app import main; main()", "serve", "--model",
               f"models:/{HOSTILE}@champion", "--tracking-uri", uri, "--port", str(free_port())]
    result = subprocess.run(command, capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and lines, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[-1].startswith("error: refusing model ") and lines[-1].endswith(REFUSAL), lines[-1]
    assert "serving" not in result.stdout
    assert not marker.exists(), "the Lambda layer's code ran"
