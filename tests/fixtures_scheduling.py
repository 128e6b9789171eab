"""Which test modules one pytest-xdist worker runs together, so the expensive things they share start once per run.

README command 2 runs ``--dist loadscope``: xdist hands each worker whole modules, so a module's fixtures start
once. A session fixture that several modules read (a Ray cluster, the deploy tests' registry, a finished search)
would still start once on *each* worker that runs one of them. The modules of one ``SHARED_SCOPES`` entry form a
single work unit instead: one worker runs them back to back and starts what they share once.

Keep a group small enough that one worker's share stays balanced (about 2-3 minutes of the suite's ~15).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

# group -> the module paths (relative to the repository root, as xdist's node ids have them), or a folder ("x/").
SHARED_SCOPES: dict[str, tuple[str, ...]] = {
    # ray_head and two_node_cluster (tests/fixtures_processes.py): `ray start` processes with token auth.
    "ray-clusters": ("tests/platform/test_search_cluster.py", "tests/platform/test_cluster.py",
                     "tests/platform/test_jobs.py"),
    # The registry of registered models and the bare environment without mritune (tests/deploy/conftest.py).
    "deploy-registry": ("tests/deploy/",),
    # One finished classifier search with re-runs (search_helpers.shared_search): its report, UI and re-runs.
    "finished-classifier-search": ("tests/platform/test_search_report.py", "tests/platform/test_rerun_search.py"),
}


def scope_of(nodeid: str) -> str:
    """The work unit of a test: its ``SHARED_SCOPES`` group, else its module (what ``--dist loadscope`` does)."""
    module = nodeid.split("::", 1)[0]
    for group, members in SHARED_SCOPES.items():
        if any(module == member or (member.endswith("/") and module.startswith(member)) for member in members):
            return f"shared:{group}"
    return module


def pytest_xdist_make_scheduler(config: "pytest.Config", log):
    """``--dist loadscope`` with the shared groups above as single scopes; other modes are left to xdist."""
    if config.getoption("dist", None) != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    # Hand out the work units in collection order, not xdist's default of most tests first: collection puts the
    # modules that share the embedded Ray first (tests/fixtures_ray.py), so each worker serves them back to back
    # with one Ray instead of starting Ray again after every non-Ray module xdist slots in between (17 -> 12
    # Ray starts per run), and the lighter in-process modules come last, where they even out the two workers' ends.
    config.option.loadscopereorder = False

    class SharedScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return SharedScopeScheduling(config, log)
