"""`mritune data ...`: inspect a dataset folder, write the synthetic dataset. Thin: calls trainables/data/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from mritune.platform.cli.train import CLASSES_HELP, split_classes

data_app = typer.Typer(help="Inspect MRI dataset folders and write the synthetic MRI dataset.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(data_app, name="data")


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write; the dataset goes to OUT/Dataset/<Class_Folder>/."),
    n: int = typer.Option(6400, "--n", help="Number of images (original class proportions, >= 16 Moderate)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same bytes."),
    size: int = typer.Option(128, "--size", help="Image side in pixels."),
    preview: Optional[Path] = typer.Option(None, "--preview", help="Also write a contact sheet PNG here."),
) -> None:
    """Write a synthetic Alzheimer's MRI dataset (MNI152 slices with graded atrophy) in the public layout."""
    from mritune.trainables.data.synthetic import class_counts, synthesize_dataset

    root = synthesize_dataset(out, n=n, seed=seed, size=size, preview=preview)
    counts = ", ".join(f"{c}" for c in class_counts(n))
    typer.echo(f"wrote {n} images ({counts} per class) of {size}x{size} to {root}")
    if preview is not None:
        typer.echo(f"preview: {preview}")


@data_app.command("inspect")
def inspect(
    path: Path = typer.Argument(..., help="The dataset folder, or a parent of it up to two levels above."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    classes: Optional[str] = typer.Option(None, "--classes", help=CLASSES_HELP),
) -> None:
    """Show the layout detected, images per class (and split), image sizes, skipped files and the fingerprint."""
    from mritune.trainables.data.loading import inspect_dataset

    report = inspect_dataset(path, split_classes(classes))
    if as_json:
        typer.echo(json.dumps(report.to_json_dict(), indent=2))
        return
    typer.echo(f"dataset:     {report.root}")
    typer.echo(f"layout:      {report.layout}")
    splits = report.splits or {}
    header = "".join(f"{name:>8}" for name in splits)
    typer.echo(f"{'class':<20}{'images':>8}{header}")
    for name, count in report.classes.items():
        typer.echo(f"{name:<20}{count:>8}" + "".join(f"{split[name]:>8}" for split in splits.values()))
    typer.echo("sizes:       " + ", ".join(f"{size} ({count})" for size, count in report.sizes.items()))
    typer.echo(f"skipped:     {len(report.skipped)}")
    for relpath, reason in report.skipped:
        typer.echo(f"  {relpath}: {reason}")
    if report.ignored:
        typer.echo(f"ignored:     {len(report.ignored)} non-image files or non-class folders")
    typer.echo(f"fingerprint: {report.fingerprint}")
