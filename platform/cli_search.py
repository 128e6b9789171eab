"""`mritune search`, `mritune resume` and `mritune quickstart`: thin commands over platform/runner.py."""

from __future__ import annotations

from typing import Optional

import typer

# The help of --set for every command that takes a spec (search, submit): config.apply_overrides applies them.
SET_HELP = "Override a spec value, e.g. --set search.num_samples=4 (repeatable; values parsed as YAML)."


def register(app: typer.Typer) -> None:
    app.command("search")(search_command)
    app.command("resume")(resume_command)
    app.command("quickstart")(quickstart_command)


def search_command(
    config: str = typer.Argument(..., help="Search spec YAML, e.g. configs/classifier-quick.yaml"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS, else embedded)"),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: ./mlruns.db)"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Run a hyperparameter search defined by a YAML spec."""
    from mritune.platform.config import load_spec
    from mritune.platform.report import print_outcome
    from mritune.platform.runner import run_search

    spec = load_spec(config, set_)
    print_outcome(run_search(spec, address=address, tracking_uri=tracking_uri))


def resume_command(
    search: str = typer.Argument(..., help="Search name (newest folder of that name) or search folder path"),
    storage_path: str = typer.Option(
        "./ray_results", help="Where searches are stored: a folder or a URI such as s3://BUCKET/ray_results"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS, else embedded)"),
) -> None:
    """Continue an interrupted search from its Tune checkpoints."""
    from mritune.platform.report import print_outcome
    from mritune.platform.runner import resume_search

    print_outcome(resume_search(search, storage_path=storage_path, address=address))


def quickstart_command(
    fast: bool = typer.Option(False, "--fast", help="Smaller data and fewer trials (about 4 minutes on 2 cores)"),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: ./mlruns.db)"),
) -> None:
    """From nothing: synthetic data, a classifier search and a DCGAN search, both registered."""
    from mritune.platform.quickstart import run_quickstart

    run_quickstart(fast=fast, tracking_uri=tracking_uri)
