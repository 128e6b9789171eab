"""The logged pyfuncs: no pickle anywhere, loadable by plain MLflow, carrying their code and their OOD guard, and
pickle-based models refused on load."""

from __future__ import annotations

import base64
import shutil

import cv2
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import yaml

from mritune.deploy.model_files import CODE_MODEL_LOADER, UnsafeModelError, load_keras_model, read_model_folder
from mritune.deploy.model_logging import PYFUNC_MODULES
from mritune.deploy.ood_guard import OOD_COLUMNS
from mritune.deploy.predict import run_predict
from mritune.deploy.registry_client import pull
from mritune.trainables.data.classes import CLASS_NAMES
from mritune.trainables.data.preprocess import ImageDecodeError, decode_image
from tests.deploy.conftest import GENERATOR, IMAGE_SIZE


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def test_mlmodel_is_code_based_without_pickle(pulled_classifier):
    mlmodel = yaml.safe_load((pulled_classifier / "MLmodel").read_text())
    assert set(mlmodel["flavors"]) == {"python_function"}
    assert mlmodel["flavors"]["python_function"]["loader_module"] == CODE_MODEL_LOADER
    assert not [p for p in pulled_classifier.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    folder = read_model_folder(pulled_classifier)
    assert (folder.kind, folder.image_size) == ("classifier", IMAGE_SIZE)
    assert tuple(folder.config["class_names"]) == CLASS_NAMES


def test_the_model_carries_its_code_its_guard_and_requirements_any_index_has(registry, pulled_classifier):
    mlmodel = yaml.safe_load((pulled_classifier / "MLmodel").read_text())
    code = pulled_classifier / mlmodel["flavors"]["python_function"]["code"]
    carried = sorted(p.relative_to(code).as_posix() for p in code.rglob("*.py"))
    assert carried == sorted(m.replace(".", "/") + ".py" for m in PYFUNC_MODULES)
    assert not list(code.rglob("__init__.py")), "mritune stays a namespace package where it is installed"
    requirements = (pulled_classifier / "requirements.txt").read_text().split()
    assert sorted(r.split("==")[0] for r in requirements) == sorted(
        ["keras", "mlflow", "numpy", "opencv-python-headless", "pandas", "tensorflow"])
    folder = read_model_folder(pulled_classifier)
    assert folder.guard_path is not None and folder.guard_path.read_bytes() == registry.classifier_guard.read_bytes()
    assert mlmodel["metadata"]["ood_guard"] is True


def test_plain_mlflow_pyfunc_predicts_like_the_keras_model(registry, pulled_classifier):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, size=(48, 40), dtype=np.uint8), rng.integers(0, 256, size=(32, 32), dtype=np.uint8)]
    frame = pd.DataFrame({"image": [base64.b64encode(_png(images[0])).decode(), _png(images[1])]})
    predictions = mlflow.pyfunc.load_model(str(pulled_classifier)).predict(frame)

    assert list(predictions.columns) == ["class"] + [f"prob_{c}" for c in CLASS_NAMES] + list(OOD_COLUMNS)
    assert predictions["ood_score"].map(np.isfinite).all()
    assert list(predictions["in_distribution"]) == list(predictions["ood_score"] <= 1.0)
    keras_model = load_keras_model(registry.classifier_keras)
    pixels = np.stack([decode_image(_png(i), IMAGE_SIZE) for i in images]).astype(np.float32)[..., None]
    expected = np.asarray(keras_model(pixels, training=False))
    np.testing.assert_allclose(predictions[[f"prob_{c}" for c in CLASS_NAMES]].to_numpy(), expected, atol=1e-5)
    assert list(predictions["class"]) == [CLASS_NAMES[i] for i in expected.argmax(axis=1)]


def test_pyfunc_names_the_image_that_does_not_decode(pulled_classifier):
    model = mlflow.pyfunc.load_model(str(pulled_classifier))
    good = base64.b64encode(_png(np.zeros((32, 32), dtype=np.uint8))).decode()
    with pytest.raises(Exception, match="image 1: .*not an image"):
        model.predict(pd.DataFrame({"image": [good, base64.b64encode(b"plain text, no image").decode()]}))
    predictor = model.unwrap_python_model().predictor
    with pytest.raises(ImageDecodeError, match="image 0: not valid base64"):
        predictor.predict_input(pd.DataFrame({"image": ["%%% not base64"]}), allow_paths=False)
    batch = predictor.predict_input(np.zeros((3, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.uint8), allow_paths=False)
    assert len(batch) == 3 and np.allclose(batch.filter(like="prob_").sum(axis=1), 1.0, atol=1e-5)


class _EchoModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def test_cloudpickled_python_model_is_refused(tmp_path):
    path = tmp_path / "pickled"
    mlflow.pyfunc.save_model(str(path), python_model=_EchoModel(), pip_requirements=["mlflow"])
    assert list(path.glob("*.pkl")), "MLflow is expected to pickle a PythonModel instance"
    with pytest.raises(UnsafeModelError, match="refusing model"):
        read_model_folder(path)
    image = tmp_path / "a.png"
    image.write_bytes(_png(np.zeros((8, 8), dtype=np.uint8)))
    with pytest.raises(UnsafeModelError, match="refusing model"):
        run_predict([str(image)], model=str(path), out=tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists()


def test_foreign_flavour_is_refused(pulled_classifier, tmp_path):
    copy = shutil.copytree(pulled_classifier, tmp_path / "copy")
    mlmodel = yaml.safe_load((copy / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"] = {"pickled_model": "model.pkl", "serialization_format": "cloudpickle"}
    (copy / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(UnsafeModelError, match="flavour\\(s\\) sklearn"):
        read_model_folder(copy)


def test_generator_pyfunc_returns_seeded_pngs(registry, tmp_path):
    out = tmp_path / "dcgan"
    pull(f"{GENERATOR}@champion", out_dir=out, tracking_uri=registry.tracking_uri)
    model = mlflow.pyfunc.load_model(str(out))
    first = model.predict(pd.DataFrame({"n": [3], "seed": [7]}))
    again = model.predict(pd.DataFrame({"n": [3], "seed": [7]}))
    other = model.predict(pd.DataFrame({"n": [3], "seed": [8]}))
    assert list(first.columns) == ["row", "image", *OOD_COLUMNS] and len(first) == 3
    assert first["ood_score"].map(np.isfinite).all() and set(first["in_distribution"]) <= {True, False}
    decoded = [cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_UNCHANGED) for b in first["image"]]
    assert all(d.shape == (IMAGE_SIZE, IMAGE_SIZE) and d.dtype == np.uint8 for d in decoded)
    assert list(first["image"]) == list(again["image"])
    assert list(first["image"]) != list(other["image"])


def test_mlflow_scoring_server_parses_base64_images(pulled_classifier, monkeypatch):
    """What `mlflow models serve` does with a JSON request, through MLflow's own request handling."""
    from mlflow.pyfunc import scoring_server

    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "true")  # as MLflow's server sets it
    model = mlflow.pyfunc.load_model(str(pulled_classifier))
    body = '{"dataframe_split": {"columns": ["image"], "data": [["%s"]]}}' % base64.b64encode(
        _png(np.full((20, 30), 200, dtype=np.uint8))
    ).decode()
    result = scoring_server.invocations(body, "application/json", model, model.metadata.get_input_schema())
    assert result.status == 200, result.response
    (record,) = yaml.safe_load(result.response)["predictions"]
    assert record["class"] in CLASS_NAMES
    assert sum(record[f"prob_{c}"] for c in CLASS_NAMES) == pytest.approx(1.0, abs=1e-5)
    assert record["ood_score"] > 1.0 and record["in_distribution"] is False, "a blank image is flagged"
    assert "near-constant" in record["ood_reason"]

def test_file_paths_are_read_locally_but_refused_in_a_serving_environment(pulled_classifier, tmp_path, monkeypatch):
    image = tmp_path / "scan.png"
    image.write_bytes(_png(np.full((20, 30), 90, dtype=np.uint8)))
    model = mlflow.pyfunc.load_model(str(pulled_classifier))
    monkeypatch.delenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", raising=False)
    assert model.predict(pd.DataFrame({"image": [str(image)]}))["class"][0] in CLASS_NAMES
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "true")
    with pytest.raises(Exception, match="image 0: (not valid base64|not an image)"):
        model.predict(pd.DataFrame({"image": [str(image)]}))


def test_logging_a_file_that_is_not_a_keras_model_is_a_user_error(tmp_path):
    """Checked before anything is logged, with mritune's user-error types (one line in the CLI)."""
    from mritune.deploy.model_logging import log_classifier_model
    from mritune.trainables.errors import MissingInputError, UserInputError

    (tmp_path / "model.h5").write_bytes(b"not a model")
    with pytest.raises(UserInputError, match="not a native Keras file"):
        log_classifier_model(keras_path=str(tmp_path / "model.h5"), image_size=IMAGE_SIZE, class_names=CLASS_NAMES,
                             metadata={})
    with pytest.raises(MissingInputError, match="does not exist"):
        log_classifier_model(keras_path=str(tmp_path / "missing.keras"), image_size=IMAGE_SIZE,
                             class_names=CLASS_NAMES, metadata={})


def test_a_model_registered_before_the_guard_loads_with_empty_guard_columns_said_once(registry, legacy_model, caplog):
    import logging

    from mritune.deploy.ood_guard import NO_GUARD_MESSAGE

    mlflow.set_tracking_uri(registry.tracking_uri)
    try:
        with caplog.at_level(logging.WARNING, logger="mritune.deploy.pyfunc_classifier"):
            model = mlflow.pyfunc.load_model(legacy_model)
            frame = model.predict(pd.DataFrame({"image": [_png(np.full((40, 40), v, dtype=np.uint8)) for v in (0, 90)]}))
    finally:
        mlflow.set_tracking_uri(None)
    assert list(frame.columns) == ["class"] + [f"prob_{c}" for c in CLASS_NAMES] + list(OOD_COLUMNS)
    assert frame[list(OOD_COLUMNS)].isna().all().all() and frame["class"].notna().all()
    assert [r.getMessage() for r in caplog.records].count(NO_GUARD_MESSAGE) == 1
