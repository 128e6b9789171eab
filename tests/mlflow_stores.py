"""Empty SQLite MLflow stores for tests, each a copy of one that MLflow itself created in this test process.

MLflow builds a new SQLite store by running its alembic migrations, some sixty of them: about 1.2 s of CPU, paid
again by every test that wants a store of its own (some 40 s of the pytest workers' CPU in the default suite, by
py-spy, before these copies). The first request in a process lets MLflow create a store in a private temporary
folder; every request then copies that file. The copy's Default experiment gets the artifact location MLflow gives
it (``<working directory>/mlruns/0``), so each copy holds what MLflow would have written at that path from this
process.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import sqlite3
import tempfile
from pathlib import Path


def sqlite_store(path: Path) -> str:
    """``sqlite:///<path>``, an empty MLflow store (only its Default experiment) unless `path` already holds one."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_template(), path)
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                       (str(Path.cwd() / "mlruns" / "0"),))
    return f"sqlite:///{path}"


@functools.cache
def _template() -> Path:
    """This process's store made by MLflow, on first use."""
    from mlflow.tracking import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix="mlflow-store-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    store = folder / "mlruns.db"
    MlflowClient(f"sqlite:///{store}").search_experiments()  # MLflow creates and migrates it
    return store
