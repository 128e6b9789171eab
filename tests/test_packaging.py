"""The package layout: the repo-root folders never shadow the standard library, and the wheel works."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("platform", "trainables", "search", "deploy")


def test_import_platform_from_repo_root_is_the_standard_library():
    out = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.system()); print(platform.__file__)"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    system, location = out.stdout.split()
    assert system in {"Linux", "Darwin", "Windows"}
    assert not location.startswith(str(ROOT)), location


@pytest.mark.parametrize("part", PARTS)
def test_parts_are_namespace_packages(part):
    # An __init__.py here would make the folder a regular package that shadows stdlib `platform` from the root.
    assert not (ROOT / part / "__init__.py").exists()


def test_subpackages_import_from_the_project():
    out = subprocess.run(
        [sys.executable, "-c", "import mritune.platform.spec.config as c, mritune.trainables.data.classes as k; "
         "from mritune.platform.run.quickstart import packaged_config as p; "
         "print(c.__file__); print(len(k.CLASS_NAMES)); print(p('classifier-quick.yaml'))"],
        cwd="/", capture_output=True, text=True, check=True,
    )
    location, count, packaged = out.stdout.split()
    assert location == str(ROOT / "platform" / "spec" / "config.py")
    assert count == "4"
    assert packaged == str(ROOT / "configs" / "classifier-quick.yaml")


def test_wheel_builds_and_imports_without_the_source_tree(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path / "dist")],
        check=True, capture_output=True, text=True,
    )
    wheel = next((tmp_path / "dist").glob("mritune-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mritune/platform/cli/app.py" in names
    for subpackage in ("data", "classifier", "dcgan"):  # the task registry imports these: a wheel needs them
        assert f"mritune/trainables/{subpackage}/__init__.py" in names
    assert "mritune/configs/classifier-quick.yaml" in names
    assert "mritune/platform/views/search_report/__init__.py" in names, "the search report's package reaches the wheel"
    for wing in ("infra", "spec", "tracking", "registry", "views", "run", "cli"):  # platform/'s wings
        assert f"mritune/platform/{wing}/__init__.py" in names
    assert not any(name.endswith(f"mritune/{part}/__init__.py") for part in PARTS for name in names)
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(unpacked)
    # -S skips site (and so the editable install's finder); the dependencies' folder is added by hand.
    script = (
        f"import sys; sys.path[:0] = [{str(unpacked)!r}, {sysconfig.get_paths()['purelib']!r}]; "
        "import mritune.platform.spec.config as c, mritune.platform.run.quickstart as q; "
        "print(c.__file__); print(q.packaged_config('dcgan-quick.yaml'))"
    )
    out = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    config_file, packaged = out.stdout.split()
    assert config_file.startswith(str(unpacked))
    assert packaged.startswith(str(unpacked)) and Path(packaged).is_file()
