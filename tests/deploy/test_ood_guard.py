"""The OOD guard end to end: fitted at registration on a trained classifier, flagged by `mritune predict`, refused
by `mritune serve --refuse-ood` (the request's other images still answered), kept by `mritune pull`; held-out MRI
slices pass; and a model registered before the guard still predicts and serves with empty guard columns."""

from __future__ import annotations

import csv
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from mritune.deploy.model_files import read_model_folder
from mritune.deploy.ood_guard import GUARD_FILE, NO_GUARD_MESSAGE, OOD_COLUMNS, GuardFileError, load_guard
from mritune.deploy.pyfunc_classifier import ClassifierPredictor
from mritune.platform.infra.processes import free_ports, start_in_new_session, stop_session, wait_until
from tests.deploy.conftest import invoke_mritune, sqlite_store, subprocess_env

TRAINED = "mritune-classifier"
SIZE = 32
STARTUP_DEADLINE_S = 240.0


@dataclass(frozen=True)
class TrainedModel:
    tracking_uri: str
    keras_path: Path
    guard_path: Path
    metrics: dict  # what registration logs with the test metrics
    data: object  # the MRIDataset it was trained on


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_cache_dir) -> TrainedModel:
    """A small CNN trained for a few epochs on 640 synthetic slices at 32 px, registered with its guard."""
    import mlflow

    from mritune.deploy.model_logging import log_classifier_model
    from mritune.deploy.ood_fit import fit_classifier_guard_file
    from mritune.trainables.classifier.training import train_classifier
    from mritune.trainables.data.synthetic import load_synthetic

    root = tmp_path_factory.mktemp("ood-trained")
    data = load_synthetic(n=640, size=SIZE, seed=0, cache_dir=data_cache_dir)
    config = {"backbone": "small_cnn", "image_size": SIZE, "epochs": 6, "learning_rate": 1e-3, "dense_units": 32,
              "dropout": 0.1, "batch_size": 32, "seed": 0}
    result = train_classifier(config, data, lambda epoch: None, workdir=str(root / "train"), evaluate_test=False)
    fitted = fit_classifier_guard_file(result.model_path, data, image_size=SIZE, out_dir=root / "guard")
    with sqlite_store(root, "ood") as (uri, client, experiment):
        with mlflow.start_run(experiment_id=experiment):
            info = log_classifier_model(keras_path=result.model_path, image_size=SIZE, class_names=data.class_names,
                                        metadata={"dataset_fingerprint": data.fingerprint}, guard_path=fitted.path)
        version = mlflow.register_model(info.model_uri, TRAINED).version
        client.set_registered_model_alias(TRAINED, "champion", version)
    return TrainedModel(tracking_uri=uri, keras_path=Path(result.model_path), guard_path=fitted.path,
                        metrics=fitted.metrics, data=data)


@pytest.fixture(scope="module")
def files(tmp_path_factory, trained, photo_file) -> dict[str, list[Path]]:
    """Held-out MRI slices as PNG files (at 176×208, the public dataset's size), and two photographs."""
    import skimage

    folder = tmp_path_factory.mktemp("ood-files")
    mri = []
    for index, image in enumerate(trained.data.x_test):
        path = folder / "mri" / f"test_{index:03d}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), cv2.resize(image, (176, 208), interpolation=cv2.INTER_LINEAR))
        mri.append(path)
    camera = Path(skimage.__file__).parent / "data" / "camera.png"  # a grayscale photograph: no colour to catch
    return {"mri": mri, "photos": [photo_file, camera]}


def test_the_guard_file_is_small_plain_json_and_loads_back_to_the_same_verdicts(trained):
    text = trained.guard_path.read_text()
    assert trained.guard_path.name == GUARD_FILE and len(text) < 1_000_000
    record = json.loads(text)
    assert record["kind"] == "mritune-ood-guard" and record["fitted"]["percentile"] == 99.0
    guard = load_guard(trained.guard_path, image_size=SIZE)
    assert guard.fitted["val_flagged_fraction"] <= 0.02, "the threshold is the validation split's 99th percentile"
    predictor = ClassifierPredictor(keras_model=_keras(trained), image_size=SIZE, class_names=trained.data.class_names,
                                    guard=guard)
    _, first = predictor.predict_guarded(trained.data.x_val)
    _, again = predictor.predict_guarded(trained.data.x_val)
    np.testing.assert_array_equal(first.scores, again.scores)
    assert trained.guard_path.read_text() == text, "scoring fits nothing"


def test_a_malformed_or_mismatched_guard_file_is_one_clear_error(trained, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "mritune-ood-guard", "format": 1, "threshold": -1}')
    with pytest.raises(GuardFileError, match="malformed OOD guard file|threshold"):
        load_guard(broken)
    broken.write_text("not json")
    with pytest.raises(GuardFileError, match="not valid JSON"):
        load_guard(broken)
    with pytest.raises(GuardFileError, match="fitted at 32 px, the model takes 64 px"):
        load_guard(trained.guard_path, image_size=64)


def test_held_out_mri_images_pass(trained):
    guard = load_guard(trained.guard_path)
    predictor = ClassifierPredictor(keras_model=_keras(trained), image_size=SIZE, class_names=trained.data.class_names,
                                    guard=guard)
    _, verdicts = predictor.predict_guarded(trained.data.x_test)
    assert verdicts.flagged / len(trained.data.x_test) <= 0.02, sorted(verdicts.scores)[-5:]
    assert trained.metrics["test_ood_flagged_fraction"] == pytest.approx(verdicts.flagged / len(verdicts.scores))
    assert (verdicts.in_distribution == (verdicts.scores <= 1.0)).all()
    _, rotated = predictor.predict_guarded(np.ascontiguousarray(np.rot90(trained.data.x_test, axes=(1, 2))))
    assert rotated.flagged / len(rotated.scores) >= 0.9, "the same slices turned 90° are not what it was trained on"


def test_predict_flags_the_photos_and_says_how_many(trained, files, tmp_path):
    out = tmp_path / "preds.csv"
    inputs = [str(p) for p in files["photos"]] + [str(p) for p in files["mri"][:20]]
    result = invoke_mritune("predict", *inputs, "--model", f"{TRAINED}@champion", "--tracking-uri",
                            trained.tracking_uri, "--out", str(out))
    assert result.exit_code == 0, result.stderr[-2000:]
    rows = {Path(r["path"]).name: r for r in csv.DictReader(out.open())}
    assert set(OOD_COLUMNS) <= set(next(iter(rows.values())))
    astronaut = rows["astronaut.png"]
    assert astronaut["in_distribution"] == "False" and "not grayscale" in astronaut["ood_reason"]
    assert rows["camera.png"]["in_distribution"] == "False" and float(rows["camera.png"]["ood_score"]) > 1.0
    flagged_mri = [name for name, row in rows.items() if name.startswith("test_") and row["in_distribution"] != "True"]
    assert len(flagged_mri) <= 1, flagged_mri
    assert f"flagged {2 + len(flagged_mri)} of 22 image(s) as out of distribution" in result.stderr


def test_pull_keeps_the_guard_and_predict_uses_it_from_the_folder(trained, files, tmp_path):
    out = tmp_path / "pulled"
    result = invoke_mritune("pull", f"{TRAINED}@champion", "--out", str(out), "--tracking-uri", trained.tracking_uri)
    assert result.exit_code == 0 and "with its OOD guard" in result.stdout, result.stderr[-2000:]
    metadata = json.loads((out / "metadata.json").read_text())
    assert (out / metadata["ood_guard"]).read_bytes() == trained.guard_path.read_bytes()
    folder = read_model_folder(out)
    predictor = ClassifierPredictor.from_folder(folder)
    image, colour = predictor.decode_checked(files["photos"][0])
    _, verdicts = predictor.predict_guarded(image[None], np.array([colour]))
    assert verdicts.flagged == 1


@pytest.fixture(scope="module")
def refusing_server(trained, tmp_path_factory):
    log = tmp_path_factory.mktemp("refusing") / "serve.log"
    yield from _server(["--model", f"{TRAINED}@champion", "--tracking-uri", trained.tracking_uri, "--refuse-ood"],
                       log)


def test_serve_refuse_ood_answers_422_for_the_photo_and_still_answers_the_mri(refusing_server, files):
    base, log = refusing_server
    photo, mri = files["photos"][0].read_bytes(), files["mri"][0].read_bytes()

    alone = requests.post(f"{base}/invocations", files=[("file", ("astronaut.png", photo))], timeout=120)
    assert alone.status_code == 422, alone.text
    body = alone.json()
    assert body["error_code"] == "OUT_OF_DISTRIBUTION" and "astronaut.png" in body["message"]
    assert "not grayscale" in body["message"]

    uploads = [("file", ("scan.png", mri)), ("file", ("astronaut.png", photo))]
    mixed = requests.post(f"{base}/invocations", files=uploads, timeout=120)
    assert mixed.status_code == 200, mixed.text
    scan, refused = mixed.json()["predictions"]
    assert (scan["status"], scan["in_distribution"]) == (200, True) and scan["class"]
    assert (refused["status"], refused["error_code"], refused["in_distribution"]) == (422, "OUT_OF_DISTRIBUTION", False)
    assert "class" not in refused and "not grayscale" in refused["message"]
    assert requests.get(f"{base}/version", timeout=10).json()["refuse_ood"] is True
    assert "refusing out-of-distribution images" in log.read_text()


@pytest.fixture(scope="module")
def legacy_server(registry, legacy_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("legacy") / "serve.log"
    yield from _server(["--model", legacy_model, "--tracking-uri", registry.tracking_uri], log)


def test_a_model_registered_before_the_guard_still_serves_with_empty_columns(legacy_server, files):
    base, log = legacy_server
    response = requests.post(f"{base}/invocations", files=[("file", ("scan.png", files["mri"][0].read_bytes()))] * 2,
                             timeout=120)
    assert response.status_code == 200, response.text
    for record in response.json()["predictions"]:
        assert record["class"] and all(record[column] is None for column in OOD_COLUMNS)
    assert requests.get(f"{base}/version", timeout=10).json()["ood_guard"] is False
    assert log.read_text().count(NO_GUARD_MESSAGE) == 1, "said once, at startup"


def test_a_model_registered_before_the_guard_still_predicts_with_empty_columns(registry, legacy_model, files,
                                                                               tmp_path):
    out = tmp_path / "legacy.json"
    inputs = [str(p) for p in files["mri"][:3]] + [str(files["photos"][0])]
    result = subprocess.run(["mritune", "predict", *inputs, "--model", legacy_model, "--tracking-uri",
                             registry.tracking_uri, "--out", str(out)], capture_output=True, text=True, timeout=600,
                            env=subprocess_env())
    assert result.returncode == 0, result.stderr[-2000:]
    records = json.loads(out.read_text())
    assert len(records) == 4 and all(r["class"] and all(r[c] is None for c in OOD_COLUMNS) for r in records)
    assert result.stderr.count(NO_GUARD_MESSAGE) == 1 and "flagged" not in result.stderr


def test_refuse_ood_without_a_guard_is_a_one_line_error(registry, legacy_model):
    result = subprocess.run(["mritune", "serve", "--model", legacy_model, "--tracking-uri", registry.tracking_uri,
                             "--refuse-ood", "--port", str(free_ports(1)[0])], capture_output=True, text=True,
                            timeout=600, env=subprocess_env())
    assert result.returncode == 2, result.stderr[-2000:]
    assert "--refuse-ood needs a model with an OOD guard" in result.stderr and "Traceback" not in result.stderr


def _server(arguments: list[str], log: Path):
    (port,) = free_ports(1)
    process = start_in_new_session(["mritune", "serve", *arguments, "--port", str(port)], env=subprocess_env(),
                                   log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _pings(base), timeout_s=STARTUP_DEADLINE_S, what="mritune serve", process=process, log=log)
        yield base, log
    finally:
        stop_session(process)


def _pings(base: str) -> bool:
    try:
        return requests.get(f"{base}/ping", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _keras(trained: TrainedModel):
    from mritune.deploy.model_files import load_keras_model

    return load_keras_model(trained.keras_path)
