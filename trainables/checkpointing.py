"""Per-epoch checkpoint folders: the Keras models in native format plus ``state.json``.

``state.json`` holds what the platform and a resumed trial need: task, epoch (completed), the RNG state, the
full config, image_size, class_names (classifier) or latent_dim (DCGAN), and the epoch's metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from mritune.trainables.config_validation import as_int
from mritune.trainables.errors import MissingInputError, UserInputError
from mritune.trainables.reporting import TrainingResult

STATE_FILE = "state.json"


def epoch_dir(workdir: str | Path, epoch: int) -> Path:
    path = Path(workdir) / "checkpoints" / f"epoch_{epoch:04d}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_state(folder: str | Path, state: dict[str, Any]) -> None:
    path = Path(folder) / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2, sort_keys=True))
    temporary.replace(path)  # never leave a half-written state.json for a resuming trial to read


def read_state(folder: str | Path, *, task: str) -> dict[str, Any]:
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise MissingInputError(f"{folder} is not a mritune checkpoint: {STATE_FILE} is missing")
    state = json.loads(path.read_text())
    if state.get("task") != task:
        raise UserInputError(f"checkpoint {folder} is from a {state.get('task')!r} training, not {task!r}")
    return state


def check_same_architecture(state: dict[str, Any], config: dict[str, Any], keys: Iterable[str],
                            saved_defaults: Mapping[str, Any] | None = None) -> None:
    """A checkpoint resumes only a training whose model it can hold: these config keys must match.

    ``saved_defaults``: the values of keys a checkpoint's state lacks (it was written before they existed); a key
    in neither is not checked."""
    saved = {**(saved_defaults or {}), **state.get("config", {})}
    for key in keys:
        if key in saved and saved[key] != config[key]:
            raise UserInputError(
                f"cannot resume: checkpoint has {key}={saved[key]!r} but the config asks for {config[key]!r}"
            )


def resume_point(resume_from: str | None, *, task: str, config: dict[str, Any], architecture_keys: Iterable[str],
                 saved_defaults: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any] | None]:
    """(epochs already completed, saved state) for a training started from ``resume_from``; (0, None) if fresh."""
    if not resume_from:
        return 0, None
    state = read_state(resume_from, task=task)
    check_same_architecture(state, config, architecture_keys, saved_defaults)
    return int(state["epoch"]), state


def stop_epoch(epochs: int, until_epoch: int | None) -> int:
    """The last epoch a training call trains: ``until_epoch``, else the config's ``epochs``.

    ``epochs`` stays the training's planned length, the horizon of any epoch-based schedule (the DCGAN's cosine
    learning rates), so a re-run or a replayed stage that stops at an earlier epoch trains every epoch it trains as
    the trial did. Past the horizon is refused: no trial trained there.
    """
    if until_epoch is None:
        return epochs
    return as_int("until_epoch", until_epoch, low=1, high=epochs)


def set_learning_rate(optimizer: Any, learning_rate: float) -> None:
    """Give a loaded model's optimizer the config's learning rate.

    A ``.keras`` file restores its optimizer with the learning rate it was saved with, so a training resumed with
    another one (a population-based scheduler's perturbation, ``search/population.py``) would go on with the old
    rate. The optimizer's other state (moments, iteration count) is kept. Keras stores the rate as a variable, so
    the assignment reaches the train step traced after it.
    """
    optimizer.learning_rate = float(learning_rate)


def finished_result(folder: str | Path, state: dict[str, Any], model_file: str) -> TrainingResult:
    """A trial restarted after its last epoch was saved: nothing left to train, return what the checkpoint holds."""
    folder = Path(folder)
    return TrainingResult(
        metrics=dict(state.get("metrics", {})),
        model_path=str(folder / model_file),
        artifacts={name: str(folder / rel) for name, rel in state.get("artifacts", {}).items()},
        epochs_completed=int(state["epoch"]),
    )


def rng_to_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state  # plain ints and strings: JSON-serialisable


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def epoch_seed(seed: int, epoch: int) -> int:
    """The Keras global seed for a training (re)started at ``epoch``: reproducible, distinct per restart point."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] % (2**31 - 1))
