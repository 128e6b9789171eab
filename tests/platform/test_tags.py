"""mritune's MLflow tag names live in one module (platform/tracking/tags.py): no other platform module spells one."""

from __future__ import annotations

import ast
from pathlib import Path

from mritune.platform.tracking import tags

PLATFORM = Path(__file__).resolve().parents[2] / "platform"
TAGS_MODULE = Path(tags.__file__).resolve()


def _tag_values() -> set[str]:
    return {value for name, value in vars(tags).items() if name.endswith("_TAG") and isinstance(value, str)}


def _distinctive(value: str) -> bool:
    """Tag names no other string in the code is equal to (``"epoch"`` or ``"trial_id"`` are also JSON keys)."""
    return value.startswith(("mritune.", "rerun.")) or value in {"stopped_by", "search_run_id"}


def test_no_platform_module_spells_a_tag_name_of_its_own():
    names = {value for value in _tag_values() if _distinctive(value)}
    assert {"mritune.trial_id", "mritune.role", "stopped_by", "rerun.mean"} <= names
    found = []
    for path in PLATFORM.rglob("*.py"):
        if path.resolve() == TAGS_MODULE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.append(f"{path.relative_to(PLATFORM)}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant) \
                    and str(node.values[0].value) == "metric.":
                found.append(f"{path.relative_to(PLATFORM)}:{node.lineno} f'metric.{{...}}' (tags.metric_tag)")
    assert not found, "use the constants of platform/tracking/tags.py: " + "; ".join(found)


def test_tag_names_are_unique():
    values = [value for name, value in vars(tags).items() if name.endswith("_TAG")]
    assert len(values) == len(set(values))
