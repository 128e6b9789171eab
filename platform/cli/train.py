"""`mritune train classifier|dcgan`: one training without a search, printing the final metrics.

    mritune train classifier --data synthetic --set epochs=2 --set backbone=small_cnn --json
    mritune train dcgan --data ~/data/Dataset --set image_size=64

``--set key=value`` values are read as YAML scalars (``2`` is an int, ``1e-3`` a float, ``true`` a bool); the
config is validated before any data is loaded, so a bad key or value fails at once with a one-line error.
"""

from __future__ import annotations

import json
import sys
import tempfile
from typing import Any, Optional

import typer

from mritune.trainables.errors import UserInputError
from mritune.trainables.tasks import get_task, task_names


CLASSES_HELP = ("Class folders in output order, comma-separated (e.g. CN,MCI,AD): read <data>/<class>/* "
                "instead of the Kaggle layouts.")


def split_classes(text: str | None) -> list[str] | None:
    """``"CN, MCI,AD"`` -> ``["CN", "MCI", "AD"]``; None stays None (the Kaggle classes)."""
    return None if text is None else [name.strip() for name in text.split(",")]


def parse_settings(settings: list[str]) -> dict[str, Any]:
    """``["epochs=2", "optimizer=sgd"]`` -> ``{"epochs": 2, "optimizer": "sgd"}``: ``overrides.apply_settings``,
    the parser ``mritune search --set`` uses. Raises UserInputError for a malformed setting or bad YAML."""
    from mritune.platform.spec.overrides import apply_settings

    return apply_settings({}, settings, example="epochs=2")


def validated_config(task: str, config: dict[str, Any]) -> dict[str, Any]:
    """The task's complete config (defaults filled in); ValueError names an unknown task, key or bad value."""
    if task not in task_names():
        raise UserInputError(f"unknown training {task!r}; choose {' or '.join(task_names())}")
    return get_task(task).config_class.from_dict(config).to_dict()


def load_training_data(data: str, *, image_size: int, synthetic_n: int, classes: list[str] | None = None):
    if data == "synthetic":
        from mritune.trainables.data.synthetic import load_synthetic

        return load_synthetic(n=synthetic_n, size=image_size, seed=0)
    from mritune.trainables.data.loading import load_dataset

    return load_dataset(data, image_size=image_size, classes=classes)


def run_training(task: str, config: dict[str, Any], dataset, *, workdir: str, progress) -> dict[str, Any]:
    from mritune.trainables.runtime import configure_runtime

    configure_runtime()
    train = get_task(task).training_function()
    result = train(config, dataset, progress, workdir=workdir)
    return {
        "task": task,
        "epochs_completed": result.epochs_completed,
        "metrics": result.metrics,
        "model_path": result.model_path,
        "artifacts": result.artifacts,
    }


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""

    @app.command("train")
    def train(
        task: str = typer.Argument(..., help="What to train: classifier or dcgan."),
        data: str = typer.Option(..., "--data", help="Dataset folder (either public layout), or 'synthetic'."),
        settings: Optional[list[str]] = typer.Option(None, "--set", help="A hyperparameter, key=value (repeatable)."),
        as_json: bool = typer.Option(False, "--json", help="Print the final metrics as JSON on stdout."),
        workdir: Optional[str] = typer.Option(
            None, "--workdir", help="Where checkpoints go (default: a new temp dir)."
        ),
        synthetic_n: int = typer.Option(600, "--synthetic-n", help="Images in the synthetic dataset."),
        classes: Optional[str] = typer.Option(None, "--classes", help=CLASSES_HELP),
    ) -> None:
        """Run one training without a search and print its final metrics."""
        config = validated_config(task, parse_settings(settings or []))
        dataset = load_training_data(data, image_size=config["image_size"], synthetic_n=synthetic_n,
                                     classes=split_classes(classes))
        folder = workdir or tempfile.mkdtemp(prefix=f"mritune-train-{task}-")
        stream = sys.stderr if as_json else sys.stdout
        progress_keys = get_task(task).progress_metrics

        def progress(report) -> None:
            shown = " ".join(f"{k}={report.metrics[k]:.4g}" for k in progress_keys if k in report.metrics)
            print(f"epoch {report.epoch}/{config['epochs']}: {shown}", file=stream, flush=True)

        summary = run_training(task, config, dataset, workdir=folder, progress=progress)
        if as_json:
            typer.echo(json.dumps(summary, indent=2, sort_keys=True))
            return
        for key, value in sorted(summary["metrics"].items()):
            typer.echo(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")
        typer.echo(f"model: {summary['model_path']}")
