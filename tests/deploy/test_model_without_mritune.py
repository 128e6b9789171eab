"""A registered model serves where mritune is not installed: a fresh virtual environment holding only the model's own
requirements.txt (MLflow, TensorFlow, Keras, OpenCV, pandas, NumPy) loads the champion from the registry with
``mlflow.pyfunc.load_model``, predicts with the OOD guard's columns, and serves it with
``mlflow models serve --env-manager local`` on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from mritune.deploy.model_files import read_model_folder
from mritune.deploy.ood_guard import OOD_COLUMNS
from mritune.deploy.pyfunc_classifier import ClassifierPredictor
from mritune.platform.infra.processes import free_ports, start_in_new_session, stop_session, wait_until
from mritune.trainables.data.classes import CLASS_NAMES
from tests.deploy.conftest import CLASSIFIER, GENERATOR

VENV_TIMEOUT_S = 1500  # a cold uv cache downloads and unpacks TensorFlow's ~600 MB wheel
SERVE_START_TIMEOUT_S = 240.0

_PREDICT_SCRIPT = """
import importlib.util, json, sys
import mlflow, pandas as pd
payload = json.load(open(sys.argv[1]))
mritune_before = importlib.util.find_spec("mritune") is not None
classifier = mlflow.pyfunc.load_model("models:/{classifier}@champion")
frame = classifier.predict(pd.DataFrame({{"image": payload["images"]}}))
samples = mlflow.pyfunc.load_model("models:/{generator}@champion").predict(pd.DataFrame({{"n": [3], "seed": [0]}}))
print(json.dumps({{
    "mritune_before": mritune_before,
    "pyfunc_file": sys.modules["mritune.deploy.pyfunc_classifier"].__file__,
    "columns": list(frame.columns), "records": frame.to_dict("records"),
    "sample_columns": list(samples.columns), "samples": samples.drop(columns="image").to_dict("records"),
}}))
""".format(classifier=CLASSIFIER, generator=GENERATOR)


@pytest.fixture(scope="session")
def bare_venv(tmp_path_factory, pulled_classifier) -> Path:
    """A fresh virtual environment with the champion's requirements.txt installed, and no mritune.

    Built by uv (dev extra) from the indexes pip is configured with: the environment is as fresh as pip's, but uv
    unpacks wheels once into its cache and hardlinks them, so the ~1 GB of TensorFlow and MLflow takes seconds
    once the cache holds them (pip unpacked and byte-compiled them every session: ~1.5-7 minutes here).
    """
    from uv import find_uv_bin

    uv = find_uv_bin()
    folder = tmp_path_factory.mktemp("bare-venv") / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(folder)], check=True, timeout=300)
    install = subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(folder / "bin" / "python"), *_pip_sources(),
         "-r", str(pulled_classifier / "requirements.txt")],
        capture_output=True, text=True, timeout=VENV_TIMEOUT_S,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return folder


def _pip_sources() -> list[str]:
    """pip's configured index, extra indexes and find-links (pip.conf and PIP_* variables, as `pip config list`
    shows them) as uv options: uv reads no pip configuration. Like pip, every index is searched for the best match.
    """
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             check=True, timeout=120).stdout
    options = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links"}
    sources = ["--index-strategy", "unsafe-best-match"]
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        option = options.get(key.rsplit(".", 1)[-1])
        if option is not None:
            for item in value.strip("'\"").split():
                sources += [option, item]
    return sources


def _bare_env(registry, venv: Path) -> dict:
    """No mritune anywhere on the path: not the repository (cwd elsewhere), not PYTHONPATH, and no other virtual
    environment's programs: ``mlflow models serve`` starts ``uvicorn`` by name, which must be the bare one's.
    Bytecode may be written (uv installs none): the first process compiles what it imports, the next ones reuse it.
    """
    dropped = ("PYTHONPATH", "MLFLOW_TRACKING_URI", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    others = [part for part in env.get("PATH", "").split(os.pathsep)
              if part and not (Path(part) / "activate").is_file()]  # drop every venv's bin folder
    return {**env, "PATH": os.pathsep.join([str(venv / "bin"), *others]), "VIRTUAL_ENV": str(venv),
            "MLFLOW_TRACKING_URI": registry.tracking_uri, "TF_CPP_MIN_LOG_LEVEL": "2",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def _png_b64(image: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()


@pytest.fixture(scope="module")
def images(tiny_dataset, photo_file) -> list[str]:
    """A colour photograph (scikit-image's astronaut) and a held-out synthetic MRI slice, base64 PNG/JPEG."""
    return [base64.b64encode(photo_file.read_bytes()).decode(), _png_b64(tiny_dataset.x_test[0])]


def test_the_bare_environment_has_no_mritune(bare_venv, tmp_path):
    result = subprocess.run([str(bare_venv / "bin" / "python"), "-c",
                             "import importlib.util; print(importlib.util.find_spec('mritune'))"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.stdout.strip() == "None", result.stderr


def test_the_champion_loads_and_predicts_with_its_guard_without_mritune(bare_venv, registry, images,
                                                                        pulled_classifier, tmp_path):
    (tmp_path / "payload.json").write_text(json.dumps({"images": images}))
    (tmp_path / "predict.py").write_text(_PREDICT_SCRIPT)
    result = subprocess.run([str(bare_venv / "bin" / "python"), "predict.py", "payload.json"], capture_output=True,
                            text=True, timeout=600, cwd=tmp_path, env=_bare_env(registry, bare_venv))
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])

    assert out["mritune_before"] is False
    assert "/code/mritune/deploy/pyfunc_classifier.py" in out["pyfunc_file"], "the model's own carried code ran"
    assert out["columns"] == ["class", *[f"prob_{c}" for c in CLASS_NAMES], *OOD_COLUMNS]
    photo, mri = out["records"]
    assert photo["in_distribution"] is False and "not grayscale" in photo["ood_reason"]
    # The same numbers as mritune's own predictor on the same bytes.
    predictor = ClassifierPredictor.from_folder(read_model_folder(pulled_classifier))
    frame = predictor.predict_input({"image": images}, allow_paths=False)
    for got, expected in zip(out["records"], frame.to_dict("records")):
        np.testing.assert_allclose([got[f"prob_{c}"] for c in CLASS_NAMES],
                                   [expected[f"prob_{c}"] for c in CLASS_NAMES], atol=1e-5)
        assert got["ood_score"] == pytest.approx(expected["ood_score"], rel=1e-6)
        assert got["in_distribution"] == expected["in_distribution"]
    assert out["sample_columns"] == ["row", "image", *OOD_COLUMNS]
    assert all(isinstance(s["ood_score"], float) and s["in_distribution"] in (True, False) for s in out["samples"])


def test_mlflow_models_serve_answers_with_the_guard_without_mritune(bare_venv, registry, images, tmp_path):
    (port,) = free_ports(1)
    command = [str(bare_venv / "bin" / "mlflow"), "models", "serve", "-m", f"models:/{CLASSIFIER}@champion",
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    log = tmp_path / "serve.log"
    process = start_in_new_session(command, env=_bare_env(registry, bare_venv), log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _pings(base), timeout_s=SERVE_START_TIMEOUT_S, what="mlflow models serve",
                   process=process, log=log)
        body = {"dataframe_split": {"columns": ["image"], "data": [[image] for image in images]}}
        response = requests.post(f"{base}/invocations", json=body, timeout=120)
    finally:
        stop_session(process)
    assert response.status_code == 200, response.text[:2000]
    photo, mri = response.json()["predictions"]
    assert set(OOD_COLUMNS) <= set(photo) and set(OOD_COLUMNS) <= set(mri)
    assert photo["in_distribution"] is False and photo["ood_score"] > 1.0 and "not grayscale" in photo["ood_reason"]
    assert mri["class"] in CLASS_NAMES and isinstance(mri["ood_score"], float)


def test_a_model_registered_before_the_guard_still_needs_mritune(bare_venv, registry, legacy_model, tmp_path):
    """The contrast: an old model's code imports the installed mritune, so a bare environment cannot load it."""
    script = f"import mlflow; mlflow.pyfunc.load_model({legacy_model!r})"
    result = subprocess.run([str(bare_venv / "bin" / "python"), "-c", script], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path, env=_bare_env(registry, bare_venv))
    assert result.returncode != 0 and "No module named 'mritune'" in result.stderr, result.stderr[-2000:]


def _pings(base: str) -> bool:
    try:
        return requests.get(f"{base}/ping", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
