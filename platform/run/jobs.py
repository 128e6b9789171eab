"""Ray Job submission with token authentication: submit a search, follow its status and logs.

Ray 2.59+ protects the dashboard's job API with a token when `RAY_AUTH_MODE=token`. Ray's own client only
adds the token when this process is in token mode, and it caches the token for the life of the process, so
here the token is resolved on every call (RAY_AUTH_TOKEN, then RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token,
the order Ray uses) and sent explicitly. Before a job is sent, the cluster is asked (on its public
`/api/authentication_mode` and `/api/authenticate` endpoints) whether it wants a token and whether ours is
right, so a missing or wrong token is one clear line, not an HTTP traceback.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mritune.platform.infra.errors import first_line
from mritune.trainables.errors import AccessDenied, ServiceUnavailable, UserInputError

# How long one probe of the dashboard may take before the address counts as unreachable.
HTTP_TIMEOUT_S = 5.0

TOKEN_HOW_TO = (
    "set RAY_AUTH_TOKEN or write the token to ~/.ray/auth_token (`ray get-auth-token` on the head prints it)"
)


def resolve_dashboard_address(address: str | None) -> str:
    """The job-submission URL: `address`, else RAY_API_SERVER_ADDRESS, else RAY_ADDRESS if it is http(s)."""
    candidate = address or os.environ.get("RAY_API_SERVER_ADDRESS")
    if not candidate and os.environ.get("RAY_ADDRESS", "").startswith(("http://", "https://")):
        candidate = os.environ["RAY_ADDRESS"]
    if not candidate:
        raise UserInputError(
            "no job-submission address; pass --address http://HEAD:8265 (the head's dashboard) "
            "or set RAY_API_SERVER_ADDRESS"
        )
    if not candidate.startswith(("http://", "https://")):
        raise UserInputError(
            f"job-submission address {candidate!r} must be the dashboard URL, e.g. http://HEAD:8265 "
            "(not the GCS address HOST:6379)"
        )
    return candidate.rstrip("/")


def find_auth_token() -> str | None:
    """The token this machine would present, from the same sources Ray reads, or None."""
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token
    path_from_env = os.environ.get("RAY_AUTH_TOKEN_PATH")
    for path in ([Path(path_from_env)] if path_from_env else []) + [Path.home() / ".ray" / "auth_token"]:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
    return None


def resolve_auth(address: str) -> dict[str, str]:
    """HTTP headers for the cluster at `address`: empty when it has no token auth, else a checked bearer token.

    Raises ConnectionError when the dashboard cannot be reached, PermissionError when the cluster wants a
    token and none is found, or when it rejects the one found.
    """
    import requests

    url = resolve_dashboard_address(address)
    mode = _get(requests, url, "/api/authentication_mode").json().get("authentication_mode", "disabled")
    if mode != "token":
        return {}
    token = find_auth_token()
    if token is None:
        raise AccessDenied(f"the Ray cluster at {url} requires an authentication token and none was found; "
                              f"{TOKEN_HOW_TO}")
    headers = {"Authorization": f"Bearer {token}"}
    answer = _post(requests, url, "/api/authenticate", headers)
    if answer.status_code in (401, 403):
        raise AccessDenied(
            f"the Ray cluster at {url} rejected the authentication token from {_token_source()}; "
            "use the head's token (`ray get-auth-token` on the head prints it)"
        )
    return headers


def submit_job(entrypoint: str, *, address: str | None, runtime_env: dict | None = None) -> str:
    """Send `entrypoint` to the cluster as a Ray Job; returns its submission id."""
    url = resolve_dashboard_address(address)
    with _job_api_errors(url):
        client = _client(url)
        return client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env or {})


def submit_search(
    config_path: str | Path,
    *,
    address: str | None,
    overrides: tuple[str, ...] | list[str] = (),
    tracking_uri: str | None = None,
) -> str:
    """Validate the spec here, then run `mritune search` on the cluster with the spec as its working dir.

    The cluster's Python environment must have mritune installed (the same version): only the spec travels.
    """
    config = Path(config_path)
    _validate_spec(config, overrides)
    env_vars = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    if tracking_uri:
        env_vars["MLFLOW_TRACKING_URI"] = tracking_uri
    with tempfile.TemporaryDirectory(prefix="mritune-job-") as staging:
        # The working dir is uploaded during submit_job, so the staging folder may go right after.
        shutil.copy2(config, Path(staging) / config.name)
        runtime_env = {"working_dir": staging, "env_vars": env_vars}
        return submit_job(search_entrypoint(config.name, overrides, tracking_uri), address=address,
                          runtime_env=runtime_env)


def search_entrypoint(config_name: str, overrides: tuple[str, ...] | list[str] = (),
                      tracking_uri: str | None = None) -> str:
    """The shell command the job runs, every argument quoted."""
    words = ["mritune", "search", config_name]
    for override in overrides:
        words += ["--set", override]
    if tracking_uri:
        words += ["--tracking-uri", tracking_uri]
    return shlex.join(words)


def job_status(job_id: str, *, address: str | None) -> str:
    """PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED."""
    url = resolve_dashboard_address(address)
    with _job_api_errors(url, job_id):
        return str(_client(url).get_job_status(job_id).value)


def job_logs(job_id: str, *, address: str | None, follow: bool = False) -> Iterator[str]:
    """The job's output so far as lines, or (follow) chunks as they come until the job ends."""
    url = resolve_dashboard_address(address)
    with _job_api_errors(url, job_id):
        client = _client(url)
        if not follow:
            text = client.get_job_logs(job_id)
    if not follow:
        yield from text.splitlines(keepends=True)
        return
    yield from _follow_logs(client, job_id, url)


def _follow_logs(client, job_id: str, url: str) -> Iterator[str]:
    """Drive Ray's async tail iterator from synchronous code, on a private event loop."""
    with _job_api_errors(url, job_id):
        client.get_job_status(job_id)  # an unknown id is a clear error here, not a websocket handshake failure
    loop = asyncio.new_event_loop()
    chunks = client.tail_job_logs(job_id)
    try:
        while True:
            with _job_api_errors(url, job_id):
                try:
                    chunk = loop.run_until_complete(chunks.__anext__())
                except StopAsyncIteration:
                    return
            yield chunk
    finally:
        loop.run_until_complete(chunks.aclose())
        loop.close()


def _client(url: str):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(url, headers=resolve_auth(url))


def _validate_spec(config: Path, overrides) -> None:
    """Catch a bad spec here, in one line, rather than in the job's logs on the cluster."""
    from mritune.platform.spec.config import load_spec

    load_spec(config, tuple(overrides))


@contextmanager
def _job_api_errors(url: str, job_id: str | None = None):
    """Ray's job client raises RuntimeError for everything; turn the common cases into one-line errors."""
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as exc:
        raise AccessDenied(f"the Ray cluster at {url} refused the request ({first_line(exc)}); "
                              f"{TOKEN_HOW_TO}") from None
    except RuntimeError as exc:
        text = first_line(exc)
        if job_id is not None and ("404" in text or "does not exist" in text):
            raise UserInputError(f"no job {job_id!r} on the Ray cluster at {url}; `ray job list` shows the ids")
        raise


def _get(requests, url: str, endpoint: str):
    try:
        answer = requests.get(url + endpoint, timeout=HTTP_TIMEOUT_S)
    except requests.exceptions.RequestException as exc:
        raise ServiceUnavailable(_unreachable(url, exc)) from None
    if answer.status_code != 200:
        raise ServiceUnavailable(
            f"{url} answered HTTP {answer.status_code}; check --address, it must be the {_head_hint()}"
        )
    return answer


def _post(requests, url: str, endpoint: str, headers: dict[str, str]):
    try:
        return requests.post(url + endpoint, headers=headers, timeout=HTTP_TIMEOUT_S)
    except requests.exceptions.RequestException as exc:
        raise ServiceUnavailable(_unreachable(url, exc)) from None


def _unreachable(url: str, exc: BaseException) -> str:
    return f"no Ray dashboard reachable at {url} ({type(exc).__name__}); check --address, it must be the {_head_hint()}"


def _head_hint() -> str:
    return "head's dashboard URL http://HEAD:8265 (`ray start --head --dashboard-host 0.0.0.0`)"


def _token_source() -> str:
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"RAY_AUTH_TOKEN_PATH ({os.environ['RAY_AUTH_TOKEN_PATH']})"
    return str(Path.home() / ".ray" / "auth_token")
