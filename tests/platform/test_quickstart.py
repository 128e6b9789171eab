"""`mritune quickstart --fast` end to end, as a new user runs it (slow: about 4 minutes on an idle 2-core box)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_quickstart_fast_registers_both_models(tmp_path):
    from mlflow.tracking import MlflowClient

    env = {**os.environ, "MRITUNE_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([str(Path(sys.executable).with_name("mritune")), "quickstart", "--fast"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "mlruns.db").is_file() and (tmp_path / "mlartifacts").is_dir()
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db")
    for name in ("mritune-classifier", "mritune-dcgan"):
        assert client.get_model_version_by_alias(name, "champion").version
    assert "mritune pull mritune-classifier@champion" in done.stdout
    assert "mean nothing clinically" in done.stdout
    printed = (done.stdout + done.stderr).splitlines()
    assert len(printed) <= 60, "\n".join(printed)  # issue 26: a newcomer's first run fits a screen or two
