"""`mritune serve` as a real process on a free port, over real HTTP: good, non-image, oversized and too-many-image
requests (fault scenario 10: each refused with a reason, and the server keeps answering)."""

from __future__ import annotations

import base64
import subprocess
import time

import cv2
import numpy as np
import pytest
import requests

from mritune.deploy.model_files import read_model_folder
from mritune.deploy.ood_guard import OOD_COLUMNS
from mritune.deploy.pyfunc_classifier import ClassifierPredictor
from mritune.deploy.serve import ServeLimits
from mritune.trainables.data.classes import CLASS_NAMES
from tests.deploy.conftest import CLASSIFIER, free_port, subprocess_env

MAX_REQUEST_MB = 0.25
STARTUP_DEADLINE_S = 240  # TensorFlow + MLflow import on a loaded 2-core machine


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def server(registry):
    port = free_port()
    process = subprocess.Popen(
        ["mritune", "serve", "--model", f"models:/{CLASSIFIER}@champion", "--tracking-uri", registry.tracking_uri,
         "--port", str(port), "--max-request-mb", str(MAX_REQUEST_MB)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=subprocess_env(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, base)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _wait_until_up(process: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}: {process.stdout.read()[-2000:]}")
        try:
            if requests.get(f"{base}/ping", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass  # not listening yet
        time.sleep(0.2)  # polling interval while waiting for the port; the deadline bounds the wait
    pytest.fail(f"server did not answer /ping within {STARTUP_DEADLINE_S} s")


def _assert_prediction(record: dict, expected: np.ndarray) -> None:
    probs = [record[f"prob_{c}"] for c in CLASS_NAMES]
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert record["class"] == CLASS_NAMES[int(np.argmax(expected))]


def test_json_formats_and_multipart_predict_like_the_model(server, pulled_classifier):
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (50, 50), dtype=np.uint8), rng.integers(0, 256, (32, 40), dtype=np.uint8)]
    encoded = [_png(i) for i in images]
    predictor = ClassifierPredictor.from_folder(read_model_folder(pulled_classifier))
    expected = predictor.predict_arrays(np.stack([predictor.decode(e) for e in encoded]))
    verdicts = predictor.predict_input({"image": encoded}, allow_paths=False)[list(OOD_COLUMNS)].to_dict("records")
    payloads = [
        {"dataframe_split": {"columns": ["image"], "data": [[_b64(e)] for e in encoded]}},
        {"dataframe_records": [{"image": _b64(e)} for e in encoded]},
        {"inputs": {"image": [_b64(e) for e in encoded]}},
        {"instances": [{"image": _b64(e)} for e in encoded]},
    ]
    for payload in payloads:
        response = requests.post(f"{server}/invocations", json=payload, timeout=30)
        assert response.status_code == 200, (payload.keys(), response.text)
        for record, row in zip(response.json()["predictions"], expected, strict=True):
            _assert_prediction(record, row)
    files = [("file", ("one.png", encoded[0], "image/png")), ("file", ("two.png", encoded[1], "image/png"))]
    response = requests.post(f"{server}/predict", files=files, timeout=30)
    assert response.status_code == 200, response.text
    records = response.json()["predictions"]
    assert [r["name"] for r in records] == ["one.png", "two.png"]
    for record, row, verdict in zip(records, expected, verdicts, strict=True):
        _assert_prediction(record, row)
        # Without --refuse-ood every image is answered, with the guard's verdict beside its class.
        assert record["ood_score"] == pytest.approx(verdict["ood_score"], rel=1e-6)
        assert (record["in_distribution"], record["ood_reason"]) == (verdict["in_distribution"], verdict["ood_reason"])
        assert "status" not in record


def test_bad_payloads_get_4xx_with_a_reason_and_the_server_keeps_serving(server):
    good = {"inputs": {"image": [_b64(_png(np.zeros((32, 32), dtype=np.uint8)))]}}
    not_image = {"inputs": {"image": [_b64(b"just some text, not an image")]}}
    over_pixels = _png(np.zeros((4100, 4100), dtype=np.uint8))  # compresses to a small file, but 16.8 Mpx
    tiny = _b64(_png(np.zeros((8, 8), dtype=np.uint8)))
    too_many = {"inputs": {"image": [tiny] * (ServeLimits().max_images + 1)}}  # ~30 KB: under the byte limit
    cases = [
        (requests.post(f"{server}/invocations", json=not_image, timeout=30), 422, "not an image"),
        (requests.post(f"{server}/invocations", files=[("file", ("x.txt", b"hello", "text/plain"))], timeout=30),
         422, "x.txt: not an image"),
        (requests.post(f"{server}/invocations", data=b"\x00" * int(MAX_REQUEST_MB * 2**20 + 1),
                       headers={"Content-Type": "application/json"}, timeout=30), 413, "over the limit"),
        (requests.post(f"{server}/invocations", files=[("file", ("big.png", over_pixels, "image/png"))], timeout=30),
         422, "over the limit of"),
        (requests.post(f"{server}/invocations", json=too_many, timeout=30), 413,
         f"{ServeLimits().max_images + 1} images is over the limit of {ServeLimits().max_images}"),
        (requests.post(f"{server}/invocations", data=b"{not json", headers={"Content-Type": "application/json"},
                       timeout=30), 400, "not valid JSON"),
        (requests.post(f"{server}/invocations", data=b"abc", headers={"Content-Type": "text/plain"}, timeout=30),
         415, "not supported"),
    ]
    for response, status, reason in cases:
        assert response.status_code == status, response.text
        assert reason in response.json()["message"]
        assert "\n" not in response.json()["message"]
    assert len(over_pixels) < MAX_REQUEST_MB * 2**20  # so the pixel limit, not the byte limit, refused it
    response = requests.post(f"{server}/invocations", json=good, timeout=30)
    assert response.status_code == 200 and response.json()["predictions"][0]["class"] in CLASS_NAMES


def test_health_and_version_describe_the_model(server):
    assert requests.get(f"{server}/health", timeout=10).status_code == 200
    version = requests.get(f"{server}/version", timeout=10).json()
    assert version["model"]["name"] == CLASSIFIER and version["model"]["version"] == 1
    assert version["mlflow"] and version["mritune"]
