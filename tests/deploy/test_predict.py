"""Batch prediction on synthetic image files with corrupt ones mixed in: those are reported, the rest predicted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mritune.deploy.model_files import read_model_folder
from mritune.deploy.predict import collect_image_paths, predict_paths, run_predict
from mritune.deploy.pyfunc_classifier import ClassifierPredictor
from mritune.trainables.data.classes import CLASS_NAMES
from mritune.trainables.data.preprocess import decode_image
from tests.deploy.conftest import IMAGE_SIZE, invoke_mritune

PROB_COLUMNS = [f"prob_{c}" for c in CLASS_NAMES]


@pytest.fixture
def image_tree(tmp_path) -> Path:
    """scans/ (png, jpg, bmp in a subfolder, a text file, a corrupt jpg, an empty png) and extra/d.png."""
    rng = np.random.default_rng(0)
    scans, extra = tmp_path / "scans", tmp_path / "extra"
    (scans / "sub").mkdir(parents=True)
    extra.mkdir()
    cv2.imwrite(str(scans / "a.png"), rng.integers(0, 256, (40, 40), dtype=np.uint8))
    cv2.imwrite(str(scans / "b.jpg"), rng.integers(0, 256, (64, 48, 3), dtype=np.uint8))
    cv2.imwrite(str(scans / "sub" / "c.bmp"), rng.integers(0, 256, (32, 32), dtype=np.uint8))
    cv2.imwrite(str(extra / "d.png"), rng.integers(0, 256, (80, 80), dtype=np.uint8))
    (scans / "notes.txt").write_text("not an image, and not picked up from a folder")
    (scans / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    (scans / "empty.png").write_bytes(b"")
    return tmp_path


@pytest.fixture(scope="module")
def predictor(pulled_classifier) -> ClassifierPredictor:
    return ClassifierPredictor.from_folder(read_model_folder(pulled_classifier))


def test_collect_expands_folders_and_globs_and_reports_missing(image_tree):
    paths, missing = collect_image_paths(
        [str(image_tree / "scans"), str(image_tree / "extra" / "*.png"), str(image_tree / "nope.png"),
         str(image_tree / "none" / "*.jpg")]
    )
    assert sorted(p.name for p in paths) == ["a.png", "b.jpg", "broken.jpg", "c.bmp", "d.png", "empty.png"]
    assert [(Path(m.path).name, m.error) for m in missing] == [
        ("nope.png", "no such file or folder"), ("*.jpg", "no files match this pattern")
    ]


def test_corrupt_files_are_reported_and_the_rest_predicted(image_tree, pulled_classifier, predictor):
    out = image_tree / "preds.csv"
    predictions = run_predict(
        [str(image_tree / "scans"), str(image_tree / "extra" / "*.png"), str(image_tree / "scans" / "notes.txt")],
        model=str(pulled_classifier), out=out,
    )
    rows = {Path(r["path"]).name: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"a.png", "b.jpg", "c.bmp", "d.png", "broken.jpg", "empty.png", "notes.txt"}
    for name in ("broken.jpg", "empty.png", "notes.txt"):
        assert rows[name]["error"] and not rows[name]["class"], name
    assert "empty file" in rows["empty.png"]["error"]
    for name in ("a.png", "b.jpg", "c.bmp", "d.png"):
        probs = np.array([float(rows[name][c]) for c in PROB_COLUMNS])
        assert rows[name]["class"] == CLASS_NAMES[int(probs.argmax())] and not rows[name]["error"]
        assert probs.sum() == pytest.approx(1.0, abs=1e-4)
    # Same numbers as the Keras model on the training's decoding of the same file.
    pixels = decode_image(image_tree / "extra" / "d.png", IMAGE_SIZE).astype(np.float32)[None, ..., None]
    expected = np.asarray(predictor.keras_model(pixels, training=False))[0]
    d_row = next(p for p in predictions if p.path.endswith("d.png"))
    np.testing.assert_allclose([p for _, p in d_row.probabilities], expected, atol=1e-5)


def test_batched_and_single_predictions_agree(image_tree, predictor):
    paths, _ = collect_image_paths([str(image_tree / "scans"), str(image_tree / "extra")])
    batched = predict_paths(paths, predictor, batch_size=64)
    single = predict_paths(paths, predictor, batch_size=1)
    assert [p.path for p in batched] == [p.path for p in single] == [str(p) for p in paths]
    for a, b in zip(batched, single):
        assert a.error == b.error and a.predicted_class == b.predicted_class
        np.testing.assert_allclose([p for _, p in a.probabilities], [p for _, p in b.probabilities], atol=1e-5)


def test_bad_output_suffix_is_refused_before_loading(image_tree):
    with pytest.raises(ValueError, match=r"must end in \.csv or \.json"):
        run_predict([str(image_tree / "scans")], model="models:/whatever@champion", out=image_tree / "p.txt")


def test_cli_predict_from_a_pulled_folder_writes_json(pulled_classifier, image_tree):
    out = image_tree / "preds.json"
    result = invoke_mritune("predict", str(image_tree / "scans"), "--model", str(pulled_classifier), "--out", str(out),
                            "--batch-size", "2")
    assert result.exit_code == 0, result.stderr[-2000:]
    records = json.loads(out.read_text())
    assert sorted(Path(r["path"]).name for r in records if r["class"]) == ["a.png", "b.jpg", "c.bmp"]
    assert "skipped" in result.stderr and "broken.jpg" in result.stderr
    assert "predicted 3 image(s), skipped 2" in result.stderr
