"""The git commit a search records is mritune's own source commit, not that of the folder the command runs in."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mritune.platform.tracking import search_run


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_the_recorded_commit_is_mritunes_not_the_working_folders(tmp_path, monkeypatch):
    other = tmp_path / "someone-elses-project"
    other.mkdir()
    _git(other, "init", "-q")
    (other / "notes.txt").write_text("x")
    _git(other, "add", "notes.txt")
    _git(other, "commit", "-q", "-m", "theirs")
    monkeypatch.chdir(other)
    source = Path(search_run.__file__).resolve().parent
    assert search_run.source_commit() == _git(source, "rev-parse", "HEAD")
    assert search_run.source_commit() != _git(other, "rev-parse", "HEAD")


def test_no_commit_when_the_source_is_not_tracked_by_the_git_repository_around_it(tmp_path):
    """mritune installed into a folder that happens to sit inside some git checkout (a venv in a project) is not
    a checkout of mritune: nothing is recorded."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "readme").write_text("x")
    _git(tmp_path, "add", "readme")
    _git(tmp_path, "commit", "-q", "-m", "project")
    installed = tmp_path / "venv" / "site-packages" / "mritune" / "platform"
    installed.mkdir(parents=True)
    (installed / "search_run.py").write_text("# an installed copy, untracked")
    assert search_run.source_commit(installed) is None
    assert search_run.source_commit(tmp_path / "not-a-folder") is None
