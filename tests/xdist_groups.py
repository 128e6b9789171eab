"""Which pytest-xdist worker runs which tests: a module at a time, and the modules that share an expensive
session fixture together, so that fixture starts once in the whole run instead of once per worker.

README command 2 runs the suite with ``-n 2 --dist loadgroup``: xdist sends all tests of one ``xdist_group`` to
one worker. Every collected test gets a group here: its module's name (what ``--dist loadscope`` would do), or,
for modules joined by a fixture of ``SHARED_SESSION_FIXTURES`` (directly or through another module), one group
for all of them. A module may also name its group itself with ``pytestmark = pytest.mark.xdist_group("...")``.
"""

from __future__ import annotations

import pytest

# Session-scoped fixtures that start processes or train a model: worth starting once per run, not per worker.
# (The browser and the embedded Ray are cheap enough to start on both workers; see fixtures_ray.py.)
SHARED_SESSION_FIXTURES = ("registry", "ray_head", "two_node_cluster", "mlflow_server")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks (its own collection hook)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups = module_groups(items)
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(groups[_module_name(item)]))


def module_groups(items: list[pytest.Item]) -> dict[str, str]:
    """Module name -> group name: modules that share a fixture of SHARED_SESSION_FIXTURES are one group."""
    fixtures_of: dict[str, set[str]] = {}
    for item in items:
        used = set(getattr(item, "fixturenames", ())) & set(SHARED_SESSION_FIXTURES)
        fixtures_of.setdefault(_module_name(item), set()).update(used)
    parent = {module: module for module in fixtures_of}

    def root(module: str) -> str:
        while parent[module] != module:
            module = parent[module]
        return module

    first_user: dict[str, str] = {}
    for module, fixtures in fixtures_of.items():
        for fixture in fixtures:
            if fixture in first_user:
                parent[root(module)] = root(first_user[fixture])
            else:
                first_user[fixture] = module
    members: dict[str, list[str]] = {}
    for module in fixtures_of:
        members.setdefault(root(module), []).append(module)
    groups = {}
    for modules in members.values():
        shared = sorted(set().union(*(fixtures_of[m] for m in modules)))
        name = "shared-" + "+".join(shared) if len(modules) > 1 else modules[0]
        groups.update(dict.fromkeys(modules, name))
    return groups


def _module_name(item: pytest.Item) -> str:
    module = getattr(item, "module", None)
    return module.__name__ if module is not None else item.nodeid.split("::")[0]
