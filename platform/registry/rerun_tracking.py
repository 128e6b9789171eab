"""The re-runs on the search's parent run: the summary JSON, MLflow's table, a few metrics; and reading them back.

``rerun/summary.json`` (``RerunSummary.to_dict``, with the gate's decision once it ran) is what the report and
``mritune report`` read; ``rerun/table.json`` is the same table as MLflow shows tables (one row per configuration:
seeds, per-seed scores, means, interval); the parent run's metrics ``rerun_*`` and ``winners_curse_*`` make
searches comparable in MLflow's runs view.
"""

from __future__ import annotations

import json
import logging

from mritune.platform.registry.rerun_summary import RerunSummary
from mritune.platform.tracking.tags import RERUN_CHANGED_WINNER_TAG

SUMMARY_ARTIFACT = "rerun/summary.json"
TABLE_ARTIFACT = "rerun/table.json"

logger = logging.getLogger(__name__)


def log_reruns(tracking_uri: str, parent_run_id: str, summary: RerunSummary) -> None:
    """Log the summary, the table and the metrics on the parent run, once, after the re-runs."""
    from mlflow.tracking import MlflowClient

    from mritune.platform.registry.rerun_views import table_columns

    client = MlflowClient(tracking_uri)
    log_summary(tracking_uri, parent_run_id, summary)
    columns = table_columns(summary)
    if columns:  # log_table appends to an existing table: logged once
        client.log_table(parent_run_id, data=columns, artifact_file=TABLE_ARTIFACT)
    metrics = {"rerun_seconds": summary.seconds}
    chosen, interval, curse = summary.chosen_config, summary.interval, summary.winners_curse()
    if chosen is not None:
        metrics[f"rerun_{summary.metric}_mean"] = chosen.val_mean
        metrics[f"rerun_{summary.gate_metric}_mean"] = chosen.test_mean
    if interval is not None:
        metrics.update({"rerun_ci95_low": interval.low, "rerun_ci95_high": interval.high})
    if curse is not None:
        metrics.update({"winners_curse_val_gap": curse.val_gap, "winners_curse_test_gap": curse.test_gap})
    for key, value in metrics.items():
        client.log_metric(parent_run_id, key, float(value))
    client.set_tag(parent_run_id, RERUN_CHANGED_WINNER_TAG, str(summary.changed_winner).lower())


def log_summary(tracking_uri: str, parent_run_id: str, summary: RerunSummary) -> None:
    """Log or replace ``rerun/summary.json`` (again once it carries the gate's decision)."""
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri).log_dict(parent_run_id, summary.to_dict(), SUMMARY_ARTIFACT)


def read_reruns(client, parent_run_id: str) -> RerunSummary | None:
    """The summary a search logged, or None (re-runs off, not run yet, or written by another format)."""
    from mlflow.exceptions import MlflowException

    if not any(item.path == SUMMARY_ARTIFACT for item in client.list_artifacts(parent_run_id, "rerun")):
        return None
    try:
        text = _read_artifact(client, parent_run_id, SUMMARY_ARTIFACT)
        return RerunSummary.from_dict(json.loads(text))
    except (MlflowException, ValueError, KeyError) as exc:
        logger.warning("could not read the re-run summary of run %s: %s", parent_run_id, exc)
        return None


def _read_artifact(client, run_id: str, path: str) -> str:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        local = client.download_artifacts(run_id, path, folder)
        return Path(local).read_text(encoding="utf-8")
