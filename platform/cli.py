"""The `mritune` command line: a thin shell over the plain functions of each part.

Each command group lives in its own module (`cli_data`, `cli_train`, `cli_search`, `cli_jobs`, `cli_deploy`)
with a `register(app)` function. Heavy imports (TensorFlow, Ray, MLflow) happen inside the commands, so
`mritune --help` is fast.
"""

from __future__ import annotations

import sys

import typer

from mritune.platform import cli_cluster, cli_data, cli_deploy, cli_jobs, cli_search, cli_train
from mritune.platform.errors import first_line

app = typer.Typer(
    name="mritune",
    help="Distributed hyperparameter search for Alzheimer's MRI deep learning (Ray Tune, GPyOpt, MLflow).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in (cli_data, cli_train, cli_search, cli_jobs, cli_cluster, cli_deploy):
    _module.register(app)

# Errors that mean "the user's input or environment is wrong": shown as one line, never as a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    PermissionError,
    ConnectionError,
    ImportError,
    TimeoutError,
)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except USER_ERRORS as exc:
        typer.echo(f"error: {first_line(exc)}", err=True)
        sys.exit(2)
