"""`mritune search`, `resume`, `quickstart`, `report` and `ui`: thin commands over platform/run/runner.py, search_report
and platform/views/ui.py."""

from __future__ import annotations

from typing import Optional

import typer

# The help of --set for every command that takes a spec (search, submit): config.apply_overrides applies them.
VERBOSE_HELP = ("Print everything Ray, TensorFlow and MLflow print (default: a line per trial, their start-up "
                "chatter left out; platform/views/quiet.py).")
SET_HELP = "Override a spec value, e.g. --set search.num_samples=4 (repeatable; values parsed as YAML)."


def register(app: typer.Typer) -> None:
    app.command("search")(search_command)
    app.command("resume")(resume_command)
    app.command("quickstart")(quickstart_command)
    app.command("report")(report_command)
    app.command("ui")(ui_command)


def search_command(
    config: str = typer.Argument(..., help="Search spec YAML, e.g. configs/classifier-quick.yaml"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS, else embedded)"),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: ./mlruns.db)"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    verbose: bool = typer.Option(False, "--verbose", help=VERBOSE_HELP),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate, print the resolved space, resources and first configuration; start nothing."
    ),
) -> None:
    """Run a hyperparameter search defined by a YAML spec."""
    from mritune.platform.spec.config import load_spec

    spec = load_spec(config, set_)
    if dry_run:
        from mritune.platform.run.dry_run import dry_run as resolve, format_dry_run

        typer.echo(format_dry_run(resolve(spec)))
        return
    from mritune.platform.views.quiet import quiet_console
    from mritune.platform.views.outcome import print_outcome
    from mritune.platform.run.runner import run_search

    with quiet_console(verbose=verbose):
        status = print_outcome(run_search(spec, address=address, tracking_uri=tracking_uri, verbose=verbose))
    _exit_with(status)


def resume_command(
    search: str = typer.Argument(..., help="The search's folder, its spec YAML, or its name (newest folder of it)"),
    storage_path: Optional[str] = typer.Option(
        None, help="Where searches are stored, a folder or a URI such as s3://BUCKET/ray_results (default: the "
        "spec's storage_path, else ./ray_results)"),
    set_: list[str] = typer.Option([], "--set", help="Overrides for a spec file, as given to `mritune search`."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS, else embedded)"),
    verbose: bool = typer.Option(False, "--verbose", help=VERBOSE_HELP),
) -> None:
    """Continue an interrupted search from its Tune checkpoints."""
    from mritune.platform.views.quiet import quiet_console
    from mritune.platform.views.outcome import print_outcome
    from mritune.platform.run.runner import resume_search

    with quiet_console(verbose=verbose):
        status = print_outcome(resume_search(search, storage_path=storage_path, overrides=tuple(set_),
                                             address=address, verbose=verbose))
    _exit_with(status)


def _exit_with(status: str) -> None:
    """A search that ran but failed (every trial diverged) exits 1, so scripts and Ray Jobs see it."""
    if status != "FINISHED":
        raise typer.Exit(1)


def quickstart_command(
    fast: bool = typer.Option(False, "--fast", help="Smaller data and fewer trials (about 4 minutes on 2 cores)"),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: ./mlruns.db)"),
    verbose: bool = typer.Option(False, "--verbose", help=VERBOSE_HELP),
) -> None:
    """From nothing: synthetic data, a classifier search and a DCGAN search, both registered."""
    from mritune.platform.run.quickstart import run_quickstart
    from mritune.platform.views.quiet import quiet_console

    with quiet_console(verbose=verbose):
        run_quickstart(fast=fast, tracking_uri=tracking_uri, verbose=verbose)


def report_command(
    search: str = typer.Argument(..., help="The search's folder, its spec YAML, or its name (newest folder of it)"),
    storage_path: Optional[str] = typer.Option(
        None, help="Where searches are stored (default: the spec's storage_path, else ./ray_results)"),
    out: Optional[str] = typer.Option(None, "--out", help="Folder for report.html and the PNGs (default: "
                                      "<search folder>/report)"),
    ui_url: Optional[str] = typer.Option(None, help="MLflow UI the trial links open (default: the tracking "
                                         "server, else http://127.0.0.1:5000)"),
) -> None:
    """Write the search report (one HTML file with the plots, and the PNGs) of a finished or running search."""
    from mritune.platform.run.runner import locate_search
    from mritune.platform.views.search_report.build import write_search_report

    files = write_search_report(locate_search(search, storage_path=storage_path), out_dir=out, ui_url=ui_url)
    typer.echo(f"Report: {files.html}")


def ui_command(
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else "
                                               "./mlruns.db, where searches record by default)"),
    port: int = typer.Option(5000, "--port", help="The UI's port"),
    host: str = typer.Option("127.0.0.1", "--host", help="The address it binds (default: this machine only)"),
) -> None:
    """Start the MLflow UI on the searches' tracking store and print the link to the latest search (Ctrl-C stops)."""
    from mritune.platform.views.ui import run_ui

    run_ui(tracking_uri=tracking_uri, host=host, port=port, echo=typer.echo)
