"""The code a registered model carries (``model_logging.PYFUNC_MODULES``) is closed under imports: each carried
module imports only the other carried modules, the standard library and the packages of the model's requirements,
so the model loads where mritune is not installed (``test_model_without_mritune.py`` checks it for real)."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

from mritune.deploy.model_logging import PYFUNC_MODULES, REQUIREMENTS

# Import names of the requirements' packages, and what MLflow itself brings (PyYAML).
IMPORT_NAMES = {"mlflow": "mlflow", "tensorflow": "tensorflow", "keras": "keras", "opencv-python-headless": "cv2",
                "pandas": "pandas", "numpy": "numpy"}
ALLOWED_THIRD_PARTY = {IMPORT_NAMES[r] for r in REQUIREMENTS} | {"yaml"}


def _imports(module: str) -> list[str]:
    """Every module name ``module`` imports, at any depth of its code, and every ``"mritune...."`` string it names
    (importlib.import_module / find_spec)."""
    source = Path(importlib.util.find_spec(module).origin).read_text()
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("mritune."):
            names.append(node.value)
    return names


def test_carried_modules_import_only_each_other_the_standard_library_and_the_requirements():
    problems = []
    for module in PYFUNC_MODULES:
        for name in _imports(module):
            top = name.split(".")[0]
            if top == "mritune":
                # `from mritune.x import y` names y too: fine when y is a function of a carried module x.
                parent = name.rsplit(".", 1)[0]
                if name not in PYFUNC_MODULES and parent not in PYFUNC_MODULES:
                    problems.append(f"{module} imports {name}, which the model does not carry")
            elif top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY and top != "__future__":
                problems.append(f"{module} imports {top}, which is not among the model's requirements")
    assert not problems, "\n".join(problems)


def test_every_requirement_has_a_known_import_name():
    assert set(REQUIREMENTS) <= set(IMPORT_NAMES)
