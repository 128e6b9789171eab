"""Ray Job submission with token authentication, against a real `ray start --head` cluster."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mritune.platform.cli.app import app
from mritune.platform.run.jobs import (
    job_logs,
    job_status,
    resolve_dashboard_address,
    search_entrypoint,
    submit_job,
    submit_search,
)
from tests.fixtures_processes import free_ports, wait_until

pytestmark = pytest.mark.timeout(600)

REPO_ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
# Runs on the cluster as the job's driver: joins through the RAY_ADDRESS the job gets, with the head's token.
PROBE_ENTRYPOINT = (
    "python -c \"from mritune.platform.infra.cluster import connect_ray; c = connect_ray(None); "
    "print('MRITUNE_PROBE', c.num_nodes, c.total_cpu, c.embedded)\""
)


@pytest.fixture
def head_token(ray_head, monkeypatch, tmp_path):
    """This process presents the head's token (from RAY_AUTH_TOKEN), and nothing from the real ~/.ray."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN", ray_head.token)
    return ray_head


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)


@pytest.mark.filterwarnings("ignore:ssl=None is deprecated:DeprecationWarning")  # inside Ray's tail_job_logs
def test_job_with_token_runs_to_success_and_its_logs_follow(head_token):
    url = head_token.dashboard_url
    job_id = submit_job(PROBE_ENTRYPOINT, address=url)

    followed = "".join(job_logs(job_id, address=url, follow=True))  # returns when the job ends
    status = wait_until(lambda: _terminal(job_id, url), timeout_s=60, what=f"job {job_id} finishing")

    assert status == "SUCCEEDED", followed
    assert "MRITUNE_PROBE 1 2.0 False" in followed
    assert "MRITUNE_PROBE 1 2.0 False" in "".join(job_logs(job_id, address=url))
    result = CliRunner().invoke(app, ["jobs", "status", job_id, "--address", url])
    assert result.exit_code == 0 and result.output.strip() == "SUCCEEDED"


def test_token_is_read_from_home_ray_auth_token(ray_head, no_token, tmp_path):
    token_file = tmp_path / "home" / ".ray" / "auth_token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(ray_head.token + "\n")
    # Authenticated, so the cluster itself answers that the job does not exist.
    with pytest.raises(ValueError, match="no job 'raysubmit_nonexistent'"):
        job_status("raysubmit_nonexistent", address=ray_head.dashboard_url)


def test_unknown_job_is_a_clear_error(head_token):
    url = head_token.dashboard_url
    for ask in (lambda: job_status("raysubmit_nope", address=url),
                lambda: list(job_logs("raysubmit_nope", address=url)),
                lambda: list(job_logs("raysubmit_nope", address=url, follow=True))):
        with pytest.raises(ValueError, match=f"no job 'raysubmit_nope' on the Ray cluster at {url}"):
            ask()


def test_missing_token_is_a_clear_error(ray_head, no_token):
    with pytest.raises(PermissionError) as caught:
        submit_job("echo never-runs", address=ray_head.dashboard_url)
    message = str(caught.value)
    assert "\n" not in message
    assert "requires an authentication token and none was found" in message
    assert "RAY_AUTH_TOKEN" in message and "~/.ray/auth_token" in message


def test_wrong_token_is_a_different_clear_error(ray_head, no_token, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "f" * 64)
    with pytest.raises(PermissionError) as caught:
        job_status("raysubmit_whatever", address=ray_head.dashboard_url)
    message = str(caught.value)
    assert "\n" not in message
    assert "rejected the authentication token from RAY_AUTH_TOKEN" in message


def test_submit_command_sends_the_spec_and_the_command(head_token, tmp_path):
    from ray.job_submission import JobSubmissionClient

    url = head_token.dashboard_url
    result = CliRunner().invoke(app, [
        "submit", str(REPO_ROOT / "configs" / "classifier-quick.yaml"), "--address", url,
        "--set", "search.num_samples=2", "--set", "promotion.rerun_top_k=2", "--tracking-uri",
        "http://mlflow.example:5000",
    ])
    assert result.exit_code == 0, result.output
    job_id = result.stdout.strip()
    assert f"mritune jobs logs {job_id} --follow --address {url}" in result.stderr
    client = JobSubmissionClient(url, headers={"Authorization": f"Bearer {head_token.token}"})
    try:
        info = client.get_job_info(job_id)
        assert shlex.split(info.entrypoint) == [
            "mritune", "search", "classifier-quick.yaml", "--set", "search.num_samples=2",
            "--set", "promotion.rerun_top_k=2", "--tracking-uri", "http://mlflow.example:5000",
        ]
        assert info.runtime_env["working_dir"].startswith("gcs://")
        assert info.runtime_env["env_vars"]["MLFLOW_TRACKING_URI"] == "http://mlflow.example:5000"
    finally:
        client.stop_job(job_id)  # the lead's end-to-end test runs a real search; this one only checks the request
    assert wait_until(lambda: _terminal(job_id, url), timeout_s=120, what=f"job {job_id} stopping") in TERMINAL


def test_bad_spec_is_refused_before_anything_is_sent(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text((REPO_ROOT / "configs" / "classifier-quick.yaml").read_text() + "surprise: 1\n")
    (port,) = free_ports(1)  # nothing listens there: validation must fail first
    with pytest.raises(ValueError, match="surprise"):
        submit_search(spec, address=f"http://127.0.0.1:{port}")


def test_unreachable_dashboard_fails_fast(no_token):
    (port,) = free_ports(1)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}.*http://HEAD:8265"):
        submit_job("echo never-runs", address=f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 10


def test_address_comes_from_option_then_api_server_then_http_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    with pytest.raises(ValueError, match="--address http://HEAD:8265"):
        resolve_dashboard_address(None)
    monkeypatch.setenv("RAY_ADDRESS", "http://10.0.0.5:8265/")
    assert resolve_dashboard_address(None) == "http://10.0.0.5:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://10.0.0.6:8265")
    assert resolve_dashboard_address(None) == "http://10.0.0.6:8265"
    assert resolve_dashboard_address("https://head.example:8443") == "https://head.example:8443"
    with pytest.raises(ValueError, match="not the GCS address"):
        resolve_dashboard_address("10.0.0.5:6379")


def test_search_entrypoint_quotes_every_argument():
    command = search_entrypoint("my spec.yaml", ["search.name=a b"], "http://h:5000")
    assert shlex.split(command) == ["mritune", "search", "my spec.yaml", "--set", "search.name=a b",
                                    "--tracking-uri", "http://h:5000"]


def _terminal(job_id: str, url: str) -> str | None:
    status = job_status(job_id, address=url)
    return status if status in TERMINAL else None
