"""`mritune submit` and `mritune jobs status|logs`: thin commands over platform/run/jobs.py."""

from __future__ import annotations

from typing import Optional

import typer

from mritune.platform.cli.search import SET_HELP

ADDRESS_HELP = (
    "Dashboard URL of the cluster, e.g. http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS, or an http RAY_ADDRESS)"
)

jobs_app = typer.Typer(help="Follow searches submitted with `mritune submit`.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("submit")(submit_command)
    app.add_typer(jobs_app, name="jobs")


def submit_command(
    config: str = typer.Argument(..., help="Search spec YAML, e.g. configs/classifier-quick.yaml"),
    address: Optional[str] = typer.Option(None, help=ADDRESS_HELP),
    tracking_uri: Optional[str] = typer.Option(
        None, help="MLflow tracking URI the job uses; on a cluster of several nodes an http:// MLflow server"
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Send a search to a Ray cluster as a Ray Job (token auth: RAY_AUTH_TOKEN or ~/.ray/auth_token)."""
    from mritune.platform.run.jobs import resolve_dashboard_address, submit_search

    url = resolve_dashboard_address(address)
    job_id = submit_search(config, address=url, overrides=tuple(set_), tracking_uri=tracking_uri)
    typer.echo(job_id)
    typer.echo(f"follow it with: mritune jobs logs {job_id} --follow --address {url}", err=True)
    if tracking_uri is None:
        typer.echo("note: no --tracking-uri, so the job records into mlruns.db in its working dir on the head",
                   err=True)


@jobs_app.command("status")
def status_command(
    job_id: str = typer.Argument(..., help="Job id printed by `mritune submit`"),
    address: Optional[str] = typer.Option(None, help=ADDRESS_HELP),
) -> None:
    """Print the job's status: PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED."""
    from mritune.platform.run.jobs import job_status

    typer.echo(job_status(job_id, address=address))


@jobs_app.command("logs")
def logs_command(
    job_id: str = typer.Argument(..., help="Job id printed by `mritune submit`"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job ends"),
    address: Optional[str] = typer.Option(None, help=ADDRESS_HELP),
) -> None:
    """Print the job's output (driver stdout and stderr)."""
    from mritune.platform.run.jobs import job_logs

    for chunk in job_logs(job_id, address=address, follow=follow):
        typer.echo(chunk, nl=False)
