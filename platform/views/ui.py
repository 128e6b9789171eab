"""`mritune ui`: the MLflow UI on the tracking store searches write to, and the link to the latest search.

The UI is ``mlflow ui`` started as a child in a session of its own (``platform/infra/processes.py``), bound to
127.0.0.1 unless told otherwise; it runs until Ctrl-C, and then exactly that session is stopped, by its pid.
An http(s) tracking URI is a server that is its own UI: nothing is started, its link is printed.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mritune.deploy.tracking_uri import is_remote_uri, resolve_tracking_uri
from mritune.platform.tracking.tags import ROLE_SEARCH, ROLE_TAG

START_TIMEOUT_S = 120.0  # mlflow ui imports MLflow's server and migrates a fresh SQLite store first


@dataclass(frozen=True)
class LatestSearch:
    """The newest search's parent run in a tracking store."""

    name: str
    experiment_id: str
    run_id: str

    def url(self, ui_url: str) -> str:
        return f"{ui_url.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"


def latest_search(tracking_uri: str) -> LatestSearch | None:
    """The parent run of the search started last, over every experiment of the store; None when there is none."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment_ids = [experiment.experiment_id for experiment in client.search_experiments()]
    if not experiment_ids:
        return None
    runs = client.search_runs(experiment_ids, filter_string=f"tags.`{ROLE_TAG}` = '{ROLE_SEARCH}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    run = runs[0]
    return LatestSearch(name=run.info.run_name or run.info.run_id, experiment_id=run.info.experiment_id,
                        run_id=run.info.run_id)


def run_ui(*, tracking_uri: str | None = None, host: str = "127.0.0.1", port: int = 5000,
           echo: Callable[[str], None] = print) -> None:
    """Start the MLflow UI on ``tracking_uri``'s store, print its link and the latest search's, run until Ctrl-C.

    Args:
        tracking_uri: The store; None: ``MLFLOW_TRACKING_URI``, else the embedded ``sqlite:///mlruns.db`` that
            ``mritune search`` and ``quickstart`` write by default.
        host: The address the UI binds (127.0.0.1: this machine only).
        port: Its port.
        echo: Where the lines go (the CLI's ``typer.echo``).

    Raises:
        ServiceFailed: The UI exited or did not answer within ``START_TIMEOUT_S`` (its log's tail is in the message).

    Example:
        >>> run_ui(port=5001)  # doctest: +SKIP
        MLflow UI (pid 4242): http://127.0.0.1:5001  (Ctrl-C stops it)
    """
    uri = resolve_tracking_uri(tracking_uri, absolute_sqlite=True)
    if is_remote_uri(uri):
        _print_links(uri, latest_search(uri), echo)
        return
    url = f"http://{host}:{port}"
    server, log = _start(uri, host, port)
    try:
        echo(f"MLflow UI (pid {server.pid}): {url}  (Ctrl-C stops it)")
        _print_links(url, latest_search(uri), echo)
        server.wait()
        echo(f"the MLflow UI exited with {server.returncode}; its log: {log}")
    except KeyboardInterrupt:
        echo("stopping the MLflow UI")
    finally:
        from mritune.platform.infra.processes import stop_session

        stop_session(server)


def _start(uri: str, host: str, port: int):
    """``mlflow ui`` in a session of its own, returned once its page answers."""
    from mritune.platform.infra.local_services import MLFLOW_SERVER_ENV
    from mritune.platform.infra.processes import console_script, start_in_new_session, stop_session, wait_until
    from mritune.trainables.errors import ServiceFailed

    log = Path(tempfile.mkdtemp(prefix="mritune-ui-")) / "mlflow-ui.log"
    # One server process: it serves one person's browser, and MLflow's default four each import MLflow (~3 s of CPU).
    command = [console_script("mlflow"), "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port),
               "--workers", "1"]
    server = start_in_new_session(command, env={**os.environ, **MLFLOW_SERVER_ENV}, log=log)
    try:
        wait_until(lambda: _answers(f"http://{host}:{port}/"), timeout_s=START_TIMEOUT_S,
                   what=f"the MLflow UI on {host}:{port}", process=server, log=log)
    except (RuntimeError, TimeoutError) as exc:
        stop_session(server)
        raise ServiceFailed(f"{exc}\n(is port {port} taken? pass --port)") from None
    return server, log


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _print_links(ui_url: str, latest: LatestSearch | None, echo: Callable[[str], None]) -> None:
    if latest is None:
        echo("No search in this store yet: `mritune quickstart --fast` or `mritune search <spec>` records one.")
        return
    echo(f"Latest search {latest.name}: {latest.url(ui_url)}")
