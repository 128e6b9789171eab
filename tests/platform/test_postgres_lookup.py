"""Where `mritune cluster local` finds PostgreSQL: the pgserver wheel (dev and cluster extras) before PATH and
Debian's folders, `$MRITUNE_POSTGRES_BIN` alone when set, and a copy other users can reach when the programs sit
where PostgreSQL's unprivileged user cannot go (root's home)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mritune.platform.infra import local_services
from mritune.platform.infra.local_services import POSTGRES_BIN_ENV, pgserver_bin_folder, postgres_binary
from mritune.trainables.errors import MissingDependency


def test_the_pgserver_wheel_comes_before_path_and_debian(monkeypatch):
    monkeypatch.delenv(POSTGRES_BIN_ENV, raising=False)
    bundle = pgserver_bin_folder()
    assert bundle is not None, "pgserver (dev extra) is not installed"
    for name in ("initdb", "postgres"):
        assert Path(postgres_binary(name)) == bundle / name
    version = subprocess.run([postgres_binary("postgres"), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "PostgreSQL" in version.stdout


def test_an_explicit_folder_is_the_only_place_looked_at(monkeypatch, tmp_path):
    monkeypatch.setenv(POSTGRES_BIN_ENV, str(tmp_path))
    with pytest.raises(MissingDependency, match=f"{POSTGRES_BIN_ENV}=.* holds no PostgreSQL program 'initdb'"):
        postgres_binary("initdb")
    monkeypatch.setenv(POSTGRES_BIN_ENV, str(pgserver_bin_folder()))
    assert Path(postgres_binary("initdb")) == pgserver_bin_folder() / "initdb"


def test_programs_another_user_cannot_reach_are_copied_with_their_installation(tmp_path, request):
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    install = private / "pginstall"
    subprocess.run(["cp", "-a", str(pgserver_bin_folder().parent), str(install)], check=True, timeout=300)
    program = install / "bin" / "postgres"
    assert not local_services._open_to_others(program)
    # As `mritune cluster local` does: a folder under /tmp every user may enter (pytest's tmp_path is owner-only).
    spare = Path(tempfile.mkdtemp(prefix="mrt-pg-", dir="/tmp"))
    spare.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(spare))
    runnable = Path(local_services._runnable_by("someone-else", str(program), spare))
    assert runnable == spare / "postgresql" / "bin" / "postgres" and local_services._open_to_others(runnable)
    # The copy finds its lib and share folders relative to itself.
    version = subprocess.run([str(runnable), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "16." in version.stdout
    # This user runs the programs where they are.
    assert local_services._runnable_by(None, str(program), spare) == str(program)
