"""The suite's xdist work units (tests/fixtures_scheduling.py): shared groups are one unit, every other module its
own, and every listed path exists (a renamed module would silently fall out of its group)."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures_scheduling import SHARED_SCOPES, scope_of

ROOT = Path(__file__).resolve().parents[1]


def test_modules_of_a_group_share_one_scope_and_others_keep_their_own():
    assert scope_of("tests/platform/test_cluster.py::test_x") == scope_of("tests/platform/test_jobs.py::test_y[a]")
    assert scope_of("tests/deploy/test_serve.py::test_x") == scope_of("tests/deploy/test_predict.py::test_y")
    assert scope_of("tests/platform/test_config.py::test_x") == "tests/platform/test_config.py"
    assert scope_of("tests/deployment_notes.py::test_x") == "tests/deployment_notes.py", "a folder matches whole"


def test_every_listed_module_or_folder_exists():
    for members in SHARED_SCOPES.values():
        for member in members:
            assert (ROOT / member).exists(), member
