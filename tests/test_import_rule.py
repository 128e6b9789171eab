"""Who may import whom (docs/architecture.md): platform → trainables, search, deploy; deploy → trainables;
search and trainables → nothing else of mritune. Checked on the source text, imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "platform": {"platform", "trainables", "search", "deploy", "configs"},
    "deploy": {"deploy", "trainables"},
    "trainables": {"trainables"},
    "search": {"search"},
}


def _imported_parts(source: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith("mritune."):
                parts.add(name.split(".")[1])
    return parts


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_imports_point_one_way(part):
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imported_parts(path) - ALLOWED[part])
        for path in sorted((ROOT / part).rglob("*.py"))
    }
    assert {file: parts for file, parts in wrong.items() if parts} == {}
