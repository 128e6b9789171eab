"""`mritune train classifier|dcgan`: one training from the command line; bad keys/values are one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.trainables.training_helpers import few_tf_threads


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["classifier", "--set", "dropuot=0.5"], "unknown classifier config key 'dropuot'"),
        (["classifier", "--set", "optimizer=rmsprop"], "optimizer must be one of adam, adamw, sgd"),
        (["classifier", "--set", "epochs"], "expected key.path=value"),
        (["dcgan", "--set", "image_size=100"], "image_size must be one of 32, 64, 128, 256"),
        (["gan"], "unknown training 'gan'"),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_key(args, expected, tmp_path):
    env = {**os.environ, "MRITUNE_CACHE_DIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", "from mritune.platform.cli.app import main; main()", "train", *args,
               "--data", "synthetic"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert not list(tmp_path.iterdir())  # validated before any data was loaded or synthesized


def test_train_classifier_prints_final_metrics_as_json(synthetic_root, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mritune.platform.cli.app import app

    few_tf_threads()
    monkeypatch.setenv("MRITUNE_CACHE_DIR", str(tmp_path / "cache"))
    args = ["train", "classifier", "--data", str(synthetic_root), "--set", "backbone=small_cnn",
            "--set", "image_size=32", "--set", "epochs=1", "--set", "dense_units=16", "--json",
            "--workdir", str(tmp_path / "run")]
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    summary = json.loads(outcome.stdout)
    assert summary["epochs_completed"] == 1 and summary["task"] == "classifier"
    assert 0.0 <= summary["metrics"]["test_macro_f1"] <= 1.0
    assert os.path.isfile(summary["model_path"])
    assert "epoch 1/1" in outcome.stderr  # progress goes to stderr in --json mode
