"""Unreachable services are one clear line, in seconds, before anything starts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.platform.search_helpers import tiny_spec

MRITUNE = str(Path(sys.executable).with_name("mritune"))


def test_search_with_an_unreachable_mlflow_server_fails_fast(tmp_path):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_spec(tmp_path).model_dump(mode="json")))
    start = time.monotonic()
    done = subprocess.run([MRITUNE, "search", str(spec_file), "--tracking-uri", "http://127.0.0.1:9"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: MLflow tracking server http://127.0.0.1:9 is unreachable")
    assert time.monotonic() - start < 60
    assert not (tmp_path / "ray_results").exists(), "nothing started"
