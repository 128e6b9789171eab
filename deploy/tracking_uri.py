"""Which MLflow tracking store a command talks to, and whether it answers: one module for the platform and deploy.

The platform (``mritune search``) and the deploy commands (``pull``, ``predict``, ``serve``, ``generate``) resolve
the tracking URI the same way, with two differences they keep on purpose:

- a search makes a relative SQLite path absolute (``absolute_sqlite=True``): its trial processes, started
  elsewhere, must write the same database file; the deploy commands only read and keep the path as given;
- a search may start with no database yet (MLflow creates the SQLite file on first use), so only an HTTP server is
  checked (``sqlite_must_exist=False``); the deploy commands read a registry that must already exist.

It lives in deploy/ because deploy may not import platform (docs/architecture.md), while platform may import deploy.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from mritune.trainables.errors import AccessDenied, MissingInputError, ServiceUnavailable

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
HEALTH_TIMEOUT_S = 3.0


class TrackingServerUnreachable(ServiceUnavailable):
    """The MLflow tracking server does not answer."""


def resolve_tracking_uri(explicit: str | None = None, spec_uri: str | None = None, *,
                         absolute_sqlite: bool = False) -> str:
    """The tracking URI to use: ``explicit`` (--tracking-uri), else ``spec_uri`` (a spec's tracking.uri), else
    ``MLFLOW_TRACKING_URI``, else the embedded default ``sqlite:///mlruns.db``.

    Args:
        explicit: The command line's ``--tracking-uri``, or None.
        spec_uri: The search spec's ``tracking.uri``, or None (the deploy commands have no spec).
        absolute_sqlite: Make a relative SQLite path absolute, resolved against the current directory.

    Example:
        >>> resolve_tracking_uri("http://127.0.0.1:5000")
        'http://127.0.0.1:5000'
    """
    uri = explicit or spec_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if absolute_sqlite and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    return uri


def is_remote_uri(uri: str) -> bool:
    """An MLflow server over HTTP(S), as opposed to a local store."""
    return uri.startswith(("http://", "https://"))


def check_server_reachable(tracking_uri: str, *, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """Fail fast, before MLflow's long retries, when an http(s) tracking server does not answer /health."""
    if not is_remote_uri(tracking_uri):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # It answered, so it is reachable; MLflow's own calls report what is wrong.
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingServerUnreachable(
            f"MLflow tracking server {tracking_uri} is unreachable ({reason}); start it (mlflow server --host "
            "127.0.0.1 --port 5000) or pass --tracking-uri"
        ) from exc


def check_tracking_reachable(tracking_uri: str, *, timeout_s: float = HEALTH_TIMEOUT_S,
                             sqlite_must_exist: bool = True) -> None:
    """Fail fast, before MLflow's long retries: an http(s) server must answer /health; with ``sqlite_must_exist``
    a SQLite database file must exist.

    Raises:
        TrackingServerUnreachable: The HTTP server does not answer within ``timeout_s``.
        PermissionError: The server wants a login (MLflow's basic-auth app) and this one is missing or wrong.
        FileNotFoundError: ``sqlite_must_exist`` and there is no database file at the SQLite path.
    """
    if is_remote_uri(tracking_uri):
        check_server_reachable(tracking_uri, timeout_s=timeout_s)
        check_server_credentials(tracking_uri, timeout_s=timeout_s)
    elif sqlite_must_exist and tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///"))
        if not database.is_file():
            raise MissingInputError(
                f"no MLflow database at {database} (tracking URI {tracking_uri}); pass --tracking-uri "
                "or set MLFLOW_TRACKING_URI"
            )


def check_server_credentials(tracking_uri: str, *, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """Ask the server one read-only question with this environment's login, so a missing or wrong
    ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` is one line before anything starts.

    Raises:
        PermissionError: The server answers 401 (no login, or a wrong one).
    """
    import base64

    request = urllib.request.Request(tracking_uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1")
    username = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if username and password:
        login = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {login}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            return  # anything else is MLflow's own calls to report
    except (urllib.error.URLError, OSError):
        return  # reachability was checked just before; MLflow's own calls report a later failure
    if not (username and password):
        raise AccessDenied(f"MLflow tracking server {tracking_uri} requires a login; set MLFLOW_TRACKING_USERNAME "
                              "and MLFLOW_TRACKING_PASSWORD")
    raise AccessDenied(f"MLflow tracking server {tracking_uri} rejected the login of user {username!r} "
                          "(MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)")
