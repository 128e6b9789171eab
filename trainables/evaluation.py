"""Test-split evaluation of a trained model: the numbers the promotion gate compares.

Selection happens on the validation split (every epoch, inside the training); the untouched test split is read
only once a model has been chosen: by ``mritune train`` for the model it just trained, and by the platform's
registry for the checkpoint a search ranked best. Each task registers its checkpoint evaluator in the task
registry (``Task.evaluate_checkpoint``: ``classifier/evaluation.py``, ``dcgan/evaluation.py``), so that both
callers compute the same metrics the same way; :func:`evaluate_checkpoint` picks it by the checkpoint's task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mritune.trainables.data.dataset import MRIDataset
from mritune.trainables.errors import UserInputError


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> file path
    # What the model produced for each test image the gate metric reads (classifier: class probabilities; DCGAN:
    # generated images), so that metric can be recomputed on resamples of the test images (``GateResampler``).
    outputs: Any = None


class GateResampler(Protocol):
    """A task's gate metric recomputed from a checkpoint's test ``outputs`` on a resample of the test images.

    The platform's re-runs (``platform/registry/rerun.py``) bootstrap over seeds x test images with it; on the indices
    ``range(n_images)`` it returns the evaluator's own gate metric. Each task registers a factory
    ``(data, image_size) -> GateResampler`` (``Task.test_resampler``).
    """

    n_images: int  # the test images the gate metric reads; resamples index 0..n_images-1
    resamples: int  # how many test-image resamples a bootstrap should draw (the metric's cost decides)

    def __call__(self, outputs: Any, indices: Any) -> float: ...


def evaluate_checkpoint(folder: str | Path, data: MRIDataset, *, out_dir: str | Path) -> Evaluation:
    """Test metrics of the model saved in a checkpoint folder (its ``state.json`` says which task it is)."""
    import json

    from mritune.trainables.tasks import get_task, task_names

    folder, out_dir = Path(folder), Path(out_dir)
    state = json.loads((folder / "state.json").read_text())
    task = state.get("task")
    if task not in task_names():
        raise UserInputError(f"checkpoint {folder} is of unknown task {task!r}; expected one of {list(task_names())}")
    return get_task(task).checkpoint_evaluator()(folder, state, data, out_dir)


def load_model(path: Path):
    """A saved Keras model, custom layers registered first, in safe mode and without its optimizer."""
    import keras

    import mritune.trainables.layers  # noqa: F401  (registers the custom layers before any load)

    return keras.saving.load_model(path, compile=False, safe_mode=True)
