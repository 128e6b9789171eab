"""Pull by alias and by version from a real SQLite MLflow registry; each lookup failure says which part is wrong."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from mritune.deploy.registry_client import (
    ModelNotFoundError,
    ModelRef,
    parse_model_ref,
    pull,
)
from mritune.deploy.tracking_uri import TrackingServerUnreachable, check_tracking_reachable
from mritune.trainables.data.classes import CLASS_NAMES
from tests.deploy.conftest import CLASSIFIER, FINGERPRINT, IMAGE_SIZE, free_port, subprocess_env


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:/mritune-classifier@champion", ModelRef(name="mritune-classifier", alias="champion")),
        ("models:/mritune-classifier/3", ModelRef(name="mritune-classifier", version=3)),
        ("mritune-dcgan@challenger", ModelRef(name="mritune-dcgan", alias="challenger")),
        ("mritune-dcgan/12", ModelRef(name="mritune-dcgan", version=12)),
        ("mritune-classifier", ModelRef(name="mritune-classifier", alias="champion")),
    ],
)
def test_parse_model_ref_forms(text, expected):
    assert parse_model_ref(text) == expected


def test_parse_model_ref_local_folder_and_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        parse_model_ref(str(tmp_path))
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    assert parse_model_ref(str(tmp_path)) == tmp_path
    with pytest.raises(ValueError, match="bad model reference"):
        parse_model_ref("models:/name@")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        parse_model_ref(str(tmp_path / "missing" / "folder"))


def test_pull_by_alias_writes_model_and_metadata(registry, pulled_classifier):
    metadata = json.loads((pulled_classifier / "metadata.json").read_text())
    assert (pulled_classifier / "MLmodel").is_file()
    assert list(pulled_classifier.glob("artifacts/*.keras"))
    assert metadata["name"] == CLASSIFIER
    assert metadata["version"] == 1
    assert metadata["aliases"] == ["champion"]
    assert metadata["run_id"] == registry.classifier_run_id
    assert metadata["metrics"]["test_macro_f1"] == pytest.approx(0.75)
    assert metadata["dataset_fingerprint"] == FINGERPRINT
    assert metadata["class_names"] == list(CLASS_NAMES)
    assert metadata["image_size"] == IMAGE_SIZE
    assert metadata["kind"] == "classifier"
    assert metadata["mritune_version"]


def test_pull_by_version_and_refuses_non_empty_folder(registry, tmp_path):
    out = tmp_path / "v2"
    record = pull(f"models:/{CLASSIFIER}/2", out_dir=out, tracking_uri=registry.tracking_uri)
    assert (record["version"], record["aliases"]) == (2, ["challenger"])
    with pytest.raises(ValueError, match="not empty"):
        pull(f"{CLASSIFIER}/1", out_dir=out, tracking_uri=registry.tracking_uri)
    record = pull(f"{CLASSIFIER}/1", out_dir=out, tracking_uri=registry.tracking_uri, overwrite=True)
    assert json.loads((out / "metadata.json").read_text())["version"] == record["version"] == 1


def test_unknown_model_alias_and_version_each_say_which(registry, tmp_path):
    uri = registry.tracking_uri
    with pytest.raises(ModelNotFoundError, match="no registered model 'nope'.*registered: mritune-classifier"):
        pull("nope@champion", out_dir=tmp_path / "a", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match="has no alias 'staging'.*champion→v1"):
        pull(f"{CLASSIFIER}@staging", out_dir=tmp_path / "b", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match=r"has no version 9 \(versions: \[1, 2\]\)"):
        pull(f"{CLASSIFIER}/9", out_dir=tmp_path / "c", tracking_uri=uri)
    assert not any(tmp_path.iterdir()), "a failed pull must leave nothing behind"


def test_unreachable_server_and_missing_database_fail_fast(tmp_path):
    started = time.monotonic()
    with pytest.raises(TrackingServerUnreachable, match="unreachable"):
        check_tracking_reachable(f"http://127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 5
    with pytest.raises(FileNotFoundError, match="no MLflow database"):
        check_tracking_reachable(f"sqlite:///{tmp_path}/absent.db")
    assert not (tmp_path / "absent.db").exists()


def test_cli_pull_errors_are_one_line(registry, tmp_path):
    result = subprocess.run(
        ["mritune", "pull", f"{CLASSIFIER}@staging", "--out", str(tmp_path / "x"),
         "--tracking-uri", registry.tracking_uri],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: model '{CLASSIFIER}' has no alias 'staging' (aliases: challenger→v2, champion→v1)"]
