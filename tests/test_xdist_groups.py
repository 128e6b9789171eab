"""The suite's worker groups (tests/xdist_groups.py): a module at a time, modules sharing a process fixture together."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from tests.xdist_groups import module_groups

ROOT = Path(__file__).resolve().parents[1]


def _item(module: str, *fixtures: str):
    return SimpleNamespace(module=SimpleNamespace(__name__=module), fixturenames=["tmp_path", *fixtures],
                           nodeid=f"{module}::test")


def test_modules_joined_by_a_shared_fixture_form_one_group_and_the_rest_stay_alone():
    items = [_item("a", "registry"), _item("b", "mlflow_server"), _item("c", "registry", "mlflow_server"),
             _item("d", "browser"), _item("e", "ray_head"), _item("e"), _item("f", "two_node_cluster", "ray_head")]
    groups = module_groups(items)
    assert groups["a"] == groups["b"] == groups["c"] == "shared-mlflow_server+registry", "b joins a through c"
    assert groups["e"] == groups["f"] == "shared-ray_head+two_node_cluster"
    assert groups["d"] == "d", "the browser is not worth a group"


COLLECT_GROUPS = """
import json, sys, pytest

class Groups:
    found = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            self.found[item.module.__name__] = item.get_closest_marker("xdist_group").args[0]

plugin = Groups()
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[plugin])
print(json.dumps(plugin.found))
sys.exit(code)
"""


def test_the_collected_suite_puts_every_module_of_the_deploy_registry_in_one_group():
    listed = subprocess.run([sys.executable, "-c", COLLECT_GROUPS, "tests/deploy", "tests/platform/test_cli_data.py"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    groups = json.loads(listed.stdout.strip().splitlines()[-1])
    registry_users = {"tests.deploy.test_generate", "tests.deploy.test_predict", "tests.deploy.test_serve",
                      "tests.deploy.test_ood_guard", "tests.deploy.test_model_logging"}
    assert {groups[module] for module in registry_users} == {"shared-registry"}, groups
    assert groups["tests.platform.test_cli_data"] == "tests.platform.test_cli_data"
