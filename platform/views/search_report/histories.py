"""A search's trial runs and their metric histories, read from MLflow in few calls however many trials it has.

One ``get_metric_history`` call per trial cost 17 ms each against SQLite on the 2-core machine (17 s for 1,000
trials, half the report's budget). A database store (SQLite, PostgreSQL) answers many runs in one query
(``get_metric_history_bulk``, the query behind the MLflow UI's chart of several runs); an HTTP server's REST API
has no such call, so there the per-run calls go out on a few threads (the server answers them in parallel).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

logger = logging.getLogger(__name__)

BULK_RUNS = 100  # run ids per bulk query (the server-side handler's own limit)
HTTP_THREADS = 8


def metric_histories(client, run_ids: Iterable[str], metric: str) -> dict[str, list]:
    """``run id -> [mlflow Metric, ...]`` of ``metric`` for every run (an empty list when it logged none)."""
    run_ids = list(run_ids)
    histories: dict[str, list] = {run_id: [] for run_id in run_ids}
    # MlflowClient has no public bulk call; its database store has one (mlflow.store.tracking.sqlalchemy_store).
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    bulk = getattr(store, "get_metric_history_bulk", None)
    if bulk is not None:
        for start in range(0, len(run_ids), BULK_RUNS):
            chunk = run_ids[start:start + BULK_RUNS]
            for row in bulk(chunk, metric, max_results=None):
                histories[row.run_id].append(row)  # a Metric that also names its run
        return histories
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=HTTP_THREADS, thread_name_prefix="mritune-report") as pool:
        for run_id, history in zip(run_ids, pool.map(lambda r: client.get_metric_history(r, metric), run_ids)):
            histories[run_id] = list(history)
    return histories
