"""The report's entry: collect the search, draw the plots, write the page, optionally log it all to the parent run."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mritune.deploy.tracking_uri import is_remote_uri
from mritune.platform.views.outcome import LOCAL_UI_URL

if TYPE_CHECKING:
    from mritune.platform.infra.storage import StorageLocation

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
ARTIFACT_PATH = "report"


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    images: dict[str, Path]  # section id -> PNG


def write_search_report(experiment_path: "str | Path | StorageLocation", *, out_dir: str | Path | None = None, log_to_run: bool = False,
                        ui_url: str | None = None) -> ReportFiles:
    """Write the report of the search in ``experiment_path`` (finished or running) to ``out_dir``.

    Args:
        experiment_path: The search folder (it holds ``mritune_search.json``), local or a storage URI;
            ``runner.find_experiment`` finds it from a name.
        out_dir: Where to write ``report.html`` and the PNGs; None: ``<experiment_path>/report`` for a local
            folder, a new temporary folder for a URI (the report is drawn on this machine).
        log_to_run: Also log them to the search's parent run, under ``report/``.
        ui_url: The MLflow UI the trial links point to; None: an http(s) tracking server itself, else the address
            ``mlflow ui`` serves on by default.

    Returns:
        The HTML file and the PNGs.

    Raises:
        FileNotFoundError: ``experiment_path`` has no ``mritune_search.json``.
        mlflow.exceptions.MlflowException: The tracking store does not know the search's run.

    Example:
        >>> files = write_search_report("ray_results/classifier-quick-20260101-120000")  # doctest: +SKIP
        >>> files.html.name  # doctest: +SKIP
        'report.html'
    """
    from mritune.platform.spec.config import parse_spec
    from mritune.platform.spec.search_folder import STATE_FILE, read_search_state
    from mritune.platform.views.search_report import html, plots
    from mritune.platform.views.search_report.collect import collect_search
    from mritune.platform.views.search_report.importance import param_importance

    from mritune.platform.infra import storage

    folder = storage.parse_location(str(experiment_path))
    state = read_search_state(folder)
    uri = state["tracking_uri"]
    record = collect_search(
        spec=parse_spec(state["spec"], source=str(folder.child(STATE_FILE))), tracking_uri=uri,
        experiment_id=state["experiment_id"], parent_run_id=state["parent_run_id"],
        ui_url=ui_url or (uri if is_remote_uri(uri) else LOCAL_UI_URL),
    )
    if out_dir is not None:
        out = Path(out_dir)
    else:
        out = Path(tempfile.mkdtemp(prefix="mritune-report-")) if folder.is_uri else Path(folder.value) / "report"
    out.mkdir(parents=True, exist_ok=True)
    importance = param_importance(record)
    images = {
        "best-so-far": plots.best_so_far_plot(record, out / "best_so_far.png"),
        "parallel-coordinates": plots.parallel_coordinates_plot(record, out / "parallel_coordinates.png"),
        "importance": plots.importance_plot(importance, out / "importance.png"),
        "learning-curves": plots.learning_curves_plot(record, out / "learning_curves.png"),
        "timeline": plots.timeline_plot(record, out / "timeline.png"),
    }
    if record.perturbed:
        images["lineage"] = plots.lineage_plot(record, out / "lineage.png")
    if record.reruns is not None and record.reruns.configs:
        images["winners-curse"] = plots.winners_curse_plot(record, out / "winners_curse.png")
    page = out / REPORT_FILE
    page.write_text(html.render(record, importance, images), encoding="utf-8")
    files = ReportFiles(html=page, images=images)
    if log_to_run:
        _log_to_run(uri, state["parent_run_id"], files)
    return files


def _log_to_run(tracking_uri: str, run_id: str, files: ReportFiles) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    for path in [files.html, *files.images.values()]:
        client.log_artifact(run_id, str(path), artifact_path=ARTIFACT_PATH)
