"""Importing the deploy modules (and the CLI) pulls in no heavy library: those load inside the commands."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("tensorflow", "keras", "mlflow", "ray", "fastapi", "uvicorn", "pandas", "GPyOpt", "matplotlib")
MODULES = ("model_files", "model_logging", "registry_client", "pyfunc_classifier", "pyfunc_generator", "predict",
           "serve", "generate", "tracking_uri", "ood_guard", "ood_fit")


def test_deploy_modules_import_without_heavy_libraries(tmp_path):
    code = (
        "import json, sys\n"
        + "".join(f"import mritune.deploy.{m}\n" for m in MODULES)
        + "import mritune.platform.cli.deploy\n"
        + f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert not list(tmp_path.iterdir()), "importing must not create files"
