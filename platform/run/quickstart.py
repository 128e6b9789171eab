"""`mritune quickstart`: synthetic data, a classifier search and a DCGAN search, both registered, end to end.

The searches are the shipped specs configs/classifier-quick.yaml and configs/dcgan-quick.yaml; `--fast` only
shrinks them through the same `--set` overrides a user could type.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import typer
from mritune.trainables.errors import MissingInputError

# --fast: the quick specs' 960 images (14+ test images per class) at 32 px, fewer classifier epochs (rungs 2, 4,
# final 8): a good configuration reached test macro-F1 0.6-0.67 at 6-10 epochs there, a full --fast run took ~1 min.
# Fewer re-runs before registering: the classifier's 2 best on 2 new seeds (the full quick start re-runs 3 x 3, as
# its spec says); the DCGAN at 32 px trains 5 epochs at most (rungs 2, 4), its best re-run on 2 seeds as in full.
FAST_OVERRIDES = {
    "classifier-quick.yaml": [
        "data.synthetic.n=960", "data.synthetic.size=32", "trainable.image_size=32",
        "search.num_samples=8", "scheduler.max_t=8", "promotion.rerun_top_k=2", "promotion.rerun_seeds=2",
    ],
    "dcgan-quick.yaml": [
        "data.synthetic.n=960", "data.synthetic.size=32", "trainable.image_size=32",
        "search.num_samples=4", "scheduler.max_t=5", "promotion.rerun_top_k=1", "promotion.rerun_seeds=2",
    ],
}


def packaged_config(name: str) -> Path:
    """A spec shipped with mritune (the repository's configs/ folder, installed as mritune.configs)."""
    # mritune.configs is a namespace package; its __path__ may also hold an editable install's path hook, which
    # importlib.resources cannot handle, so the folders are searched directly.
    for folder in importlib.import_module("mritune.configs").__path__:
        path = Path(folder) / name
        if path.is_file():
            return path
    raise MissingInputError(f"packaged spec {name} is missing; reinstall mritune (pip install -e .)")


def run_quickstart(*, fast: bool, tracking_uri: str | None, verbose: bool = False) -> list:
    from mritune.platform.spec.config import load_spec
    from mritune.platform.views.outcome import print_outcome, ui_command
    from mritune.platform.run.runner import run_search

    outcomes = []
    for name, fast_overrides in FAST_OVERRIDES.items():
        spec = load_spec(packaged_config(name), fast_overrides if fast else [])
        typer.echo(f"\n== {spec.name}: {spec.task} search, {spec.search.num_samples} trials, {spec.search.algorithm} + "
                   f"{spec.scheduler.name} ==")
        # Brief: the quick start is a newcomer's first screen (--fast fits in 60 lines); `mritune search` prints all.
        outcome = run_search(spec, tracking_uri=tracking_uri, verbose=verbose, rerun_progress=verbose)
        print_outcome(outcome, brief=not verbose)
        outcomes.append(outcome)
    typer.echo("\nSynthetic data: these scores mean nothing clinically. "
               "Next (more under the README's Everyday commands):")
    typer.echo(f"  {ui_command(outcomes[0].tracking_uri)}   # then open the Runs in MLflow links above")
    typer.echo("  mritune pull mritune-classifier@champion --out ./champion")
    typer.echo("  mritune predict path/to/images --model models:/mritune-classifier@champion --out preds.csv")
    typer.echo("  mritune generate --model models:/mritune-dcgan@champion --n 16 --out grid.png")
    return outcomes
