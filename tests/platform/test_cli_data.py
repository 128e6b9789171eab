"""`mritune data ...` through the real console script, in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mritune.trainables.data.classes import CLASS_NAMES
from mritune.trainables.data.synthetic import class_counts


def _mritune(*args: str, cache: Path) -> subprocess.CompletedProcess:
    script = shutil.which("mritune", path=str(Path(sys.executable).parent)) or shutil.which("mritune")
    assert script, "the mritune console script is not installed: pip install -e ."
    env = {**os.environ, "MRITUNE_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([script, *args], capture_output=True, text=True, env=env, timeout=120)


def test_inspect_json(synthetic_root, tmp_path):
    result = _mritune("data", "inspect", str(synthetic_root.parent), "--json", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"layout", "classes", "splits", "skipped", "fingerprint", "sizes", "path"} <= set(report)
    assert report["layout"] == "class-folders"
    assert report["classes"] == dict(zip(CLASS_NAMES, class_counts(240)))
    assert report["splits"] is None and report["skipped"] == []
    assert len(report["fingerprint"]) == 64


def test_inspect_text_and_errors(synthetic_root, tmp_path):
    result = _mritune("data", "inspect", str(synthetic_root), cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "class-folders" in result.stdout and "ModerateDemented" in result.stdout
    missing = _mritune("data", "inspect", str(tmp_path / "nowhere"), cache=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
    assert str(tmp_path / "nowhere") in missing.stderr


def test_synth_writes_dataset_and_preview(tmp_path):
    out = tmp_path / "synth"
    result = _mritune("data", "synth", "--out", str(out), "--n", "64", "--size", "32", "--seed", "3",
                      "--preview", str(tmp_path / "sheet.png"), cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((out / "Dataset").rglob("*.jpg"))) == 64
    assert (tmp_path / "sheet.png").stat().st_size > 0
    again = _mritune("data", "synth", "--out", str(out), "--n", "64", cache=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
