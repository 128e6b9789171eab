"""`mritune cluster local up|status|down`: thin commands over platform/infra/local_cluster.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

cluster_app = typer.Typer(help="Rehearse a cluster on this machine.", no_args_is_help=True)
local_app = typer.Typer(
    help="A Ray head + workers, PostgreSQL-backed MLflow server with auth and an S3 endpoint, on 127.0.0.1.",
    no_args_is_help=True,
)
cluster_app.add_typer(local_app, name="local")
STATE_HELP = "State folder (default: $MRITUNE_CLUSTER_DIR, else ~/.mritune/cluster-local)"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(cluster_app, name="cluster")


@local_app.command("up")
def up_command(
    workers: int = typer.Option(2, help="Ray worker nodes besides the head"),
    cpus_per_node: int = typer.Option(1, help="CPUs each Ray node offers"),
    as_json: bool = typer.Option(False, "--json", help="Print the addresses and the environment as JSON"),
    state_dir: Optional[Path] = typer.Option(None, help=STATE_HELP),
) -> None:
    """Start the local cluster; prints how to use it (the secrets stay in the state folder's env.sh)."""
    from mritune.platform.infra.local_cluster import up

    summary = up(workers=workers, cpus_per_node=cpus_per_node, state_dir=state_dir).summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    for key in ("ray_address", "dashboard_url", "tracking_uri", "storage_path"):
        typer.echo(f"{key + ':':15s} {summary[key]}")
    typer.echo(f"\nexport its environment:  source {summary['env_file']}")
    typer.echo(f"then:  mritune submit CONFIG --set \"storage_path={summary['storage_path']}\"")


@local_app.command("status")
def status_command(
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON"),
    state_dir: Optional[Path] = typer.Option(None, help=STATE_HELP),
) -> None:
    """Which of the started processes still run, the Ray nodes alive and the MLflow server's health."""
    from mritune.platform.infra.local_cluster import status

    report = status(state_dir=state_dir)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        if key != "processes":
            typer.echo(f"{key + ':':17s} {value}")
    for name, alive in report["processes"].items():
        typer.echo(f"  {name}: {'running' if alive else 'stopped'}")


@local_app.command("down")
def down_command(state_dir: Optional[Path] = typer.Option(None, help=STATE_HELP)) -> None:
    """Stop exactly the processes `up` started (by pid) and remove the state folder."""
    from mritune.platform.infra.local_cluster import down

    stopped = down(state_dir=state_dir)
    typer.echo(f"stopped {len(stopped)} processes: {' '.join(map(str, stopped))}")
