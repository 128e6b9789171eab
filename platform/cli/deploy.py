"""`mritune pull`, `predict`, `serve` and `generate`: thin commands over the functions in mritune.deploy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from mritune.trainables.errors import UserInputError

MODEL_HELP = "models:/NAME@ALIAS, models:/NAME/VERSION, NAME (alias champion) or a folder written by `mritune pull`"
TRACKING_HELP = "MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)"


def register(app: typer.Typer) -> None:
    app.command("pull")(pull_command)
    app.command("predict")(predict_command)
    app.command("serve")(serve_command)
    app.command("generate")(generate_command)


def pull_command(
    model: str = typer.Argument(..., help="NAME[@ALIAS | /VERSION]; alias champion by default"),
    out: Path = typer.Option(..., "--out", help="Folder to write the model and metadata.json into"),
    tracking_uri: Optional[str] = typer.Option(None, help=TRACKING_HELP),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out folder"),
) -> None:
    """Download a registered model and write DIR/metadata.json."""
    from mritune.deploy.registry_client import pull

    record = pull(model, out_dir=out, tracking_uri=tracking_uri, overwrite=force)
    aliases = ", ".join(record["aliases"]) or "no alias"
    guard = "with its OOD guard" if record["ood_guard"] else "without an OOD guard (registered before mritune had one)"
    typer.echo(f"pulled {record['name']} version {record['version']} ({aliases}) to {out}, {guard}")


def predict_command(
    images: list[str] = typer.Argument(..., help="Image files, folders or glob patterns"),
    model: str = typer.Option("models:/mritune-classifier@champion", "--model", help=MODEL_HELP),
    out: Optional[Path] = typer.Option(None, "--out", help="preds.csv or preds.json (default: CSV on stdout)"),
    tracking_uri: Optional[str] = typer.Option(None, help=TRACKING_HELP),
    batch_size: int = typer.Option(64, help="Images per inference batch"),
) -> None:
    """Predict the Alzheimer's stage of MRI images; unreadable files are reported and skipped."""
    from mritune.deploy.predict import run_predict

    from mritune.deploy.ood_guard import NO_GUARD_MESSAGE

    predictions = run_predict(images, model=model, out=out, tracking_uri=tracking_uri, batch_size=batch_size)
    failed = [p for p in predictions if p.error]
    for prediction in failed:
        typer.echo(f"skipped {prediction.path}: {prediction.error}", err=True)
    done = len(predictions) - len(failed)
    typer.echo(f"predicted {done} image(s), skipped {len(failed)}" + (f"; wrote {out}" if out else ""), err=True)
    if done and all(p.in_distribution is None for p in predictions if not p.error):
        typer.echo(f"note: {NO_GUARD_MESSAGE}", err=True)
    elif done:
        flagged = sum(p.flagged for p in predictions)
        typer.echo(f"flagged {flagged} of {done} image(s) as out of distribution (in_distribution false, "
                   "ood_reason says why)", err=True)
    if done == 0:
        sys.exit(1)


def serve_command(
    model: str = typer.Option("models:/mritune-classifier@champion", "--model", help=MODEL_HELP),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; 0.0.0.0 exposes the server to the network"),
    port: int = typer.Option(5001, help="TCP port"),
    tracking_uri: Optional[str] = typer.Option(None, help=TRACKING_HELP),
    max_request_mb: float = typer.Option(10.0, help="Largest request body accepted, in MB (413 above)"),
    refuse_ood: bool = typer.Option(False, "--refuse-ood",
                                    help="Answer 422 (with the reason) for images the OOD guard flags"),
) -> None:
    """Serve the classifier over HTTP (MLflow scoring protocol + multipart upload)."""
    from mritune.deploy.serve import ServeLimits, run_server

    if max_request_mb <= 0:
        raise UserInputError(f"--max-request-mb must be positive, got {max_request_mb}")
    limits = ServeLimits(max_request_bytes=int(max_request_mb * 1024 * 1024))
    run_server(model=model, host=host, port=port, tracking_uri=tracking_uri, limits=limits, refuse_ood=refuse_ood)


def generate_command(
    model: str = typer.Option("models:/mritune-dcgan@champion", "--model", help=MODEL_HELP),
    n: int = typer.Option(64, "--n", help="Number of samples"),
    seed: Optional[int] = typer.Option(None, help="Random seed (same seed, same images)"),
    out: Path = typer.Option(..., "--out", help="grid.png for one grid image, or a folder for one PNG per sample"),
    tracking_uri: Optional[str] = typer.Option(None, help=TRACKING_HELP),
) -> None:
    """Sample MRI slices from the DCGAN generator."""
    from mritune.deploy.generate import run_generate

    written = run_generate(model=model, n=n, seed=seed, out=out, tracking_uri=tracking_uri)
    typer.echo(f"wrote {n} sample(s) to {out}" + ("" if len(written) == 1 else f" ({len(written)} files)"))
