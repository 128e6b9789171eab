"""The `mritune` command line: a thin shell over the plain functions of each part.

Each command group lives in its own module of this folder (`data`, `train`, `search`, `jobs`, `cluster`,
`deploy`) with a `register(app)` function. Heavy imports (TensorFlow, Ray, MLflow) happen inside the commands, so
`mritune --help` is fast.
"""

from __future__ import annotations

import sys

import typer

import mritune.platform.cli.cluster as cluster_commands
import mritune.platform.cli.data as data_commands
import mritune.platform.cli.deploy as deploy_commands
import mritune.platform.cli.jobs as jobs_commands
import mritune.platform.cli.search as search_commands
import mritune.platform.cli.train as train_commands
from mritune.platform.infra.errors import DEBUG_ENV, debug_enabled, report_error

app = typer.Typer(
    name="mritune",
    help="Distributed hyperparameter search for Alzheimer's MRI deep learning (Ray Tune, GPyOpt, MLflow).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in (data_commands, train_commands, search_commands, jobs_commands, cluster_commands, deploy_commands):
    _module.register(app)


_STATE = {"debug": False}  # set by --debug, read by main() after the command


def _print_version(value: bool) -> None:
    if value:
        import importlib.metadata

        typer.echo(f"mritune {importlib.metadata.version('mritune')}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help=f"Show tracebacks of user errors too (or set {DEBUG_ENV}=1)."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print mritune's version and exit."),
) -> None:
    if debug:
        _STATE["debug"] = True


def main() -> None:
    """Console-script entry point: mritune's user errors as one line (exit 2), anything else with its traceback
    (exit 70); ``--debug`` or ``MRITUNE_DEBUG=1`` shows the traceback of user errors too."""
    try:
        app()
    except Exception as exc:  # every error ends here once, printed by its kind (platform/infra/errors.py)
        sys.exit(report_error(exc, debug=_STATE["debug"] or debug_enabled()))
