"""What the runner hands a person around a search: the console callbacks, the parent run's description, the report.

The runner calls these three hooks; everything they do lives in ``console``, ``run_callbacks``,
``run_description`` and ``search_report``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mritune.platform.spec.config import SearchSpec

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)


def searched_keys(spec: SearchSpec) -> list[str]:
    """The searched hyperparameters' names, in the spec's order (the run names and progress lines show them)."""
    return list(spec.search.space)


def floor_metric(spec: SearchSpec, metric: str | None = None) -> str | None:
    """The metric holding the real-vs-real floor of ``metric`` (default: the search metric) in ``spec``'s task, or
    None (``Task.floor_metrics``: the one place that says which floor belongs to which score)."""
    from mritune.trainables.tasks import get_task

    return get_task(spec.task).floor_of(metric or spec.metric)


def search_callbacks(*, spec: SearchSpec, tracking_uri: str, experiment_id: str, parent_run_id: str,
                     verbose: bool) -> list:
    """Tune callbacks: readable trial run names always, mritune's progress lines unless verbose (Ray's then)."""
    from mritune.platform.views.console import ConsoleProgress
    from mritune.platform.tracking.run_callbacks import TrialRunNamer

    callbacks = [TrialRunNamer(tracking_uri=tracking_uri, experiment_id=experiment_id, parent_run_id=parent_run_id,
                               searched=searched_keys(spec))]
    if not verbose:
        callbacks.append(ConsoleProgress(metric=spec.metric, mode=spec.mode, epochs=spec.epochs,
                                         searched=searched_keys(spec), floor_metric=floor_metric(spec),
                                         population=spec.scheduler.population_based))
    return callbacks


def describe_started_search(spec: SearchSpec, *, tracking_uri: str, parent_run_id: str) -> None:
    from mritune.platform.views.run_description import search_description, set_description

    set_description(tracking_uri, parent_run_id, search_description(spec))


def finish_search_views(spec: SearchSpec, outcome) -> "Path | None":
    """At the end of a search: the parent run's description with the result, and the report logged to the run.
    Returns the report's HTML file, or None if it was not written.

    A report that cannot be drawn does not fail a search that found and registered a model: the error is logged
    with its traceback, and ``mritune report`` can draw it again.
    """
    from mritune.platform.views.run_description import search_description, set_description
    from mritune.platform.views.search_report.build import write_search_report

    set_description(outcome.tracking_uri, outcome.parent_run_id, search_description(spec, outcome=outcome))
    try:
        files = write_search_report(outcome.experiment_path, log_to_run=True)
    except Exception:  # a bug in the report: keep the traceback in the log, keep the search's result
        logger.exception("could not write the report of search %s; try `mritune report %s`", spec.name,
                         outcome.experiment_path)
        return None
    logger.info("search report: %s", files.html)
    return files.html
