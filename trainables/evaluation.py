"""Test-split evaluation of a trained model: the numbers the promotion gate compares.

Selection happens on the validation split (every epoch, inside the training); the untouched test split is read
only here, once a model has been chosen: by ``mritune train`` for the model it just trained, and by the platform's
registry for the checkpoint a search ranked best. One function per task, looked up in ``TEST_EVALUATORS``, so
that both callers compute the same metrics the same way:

- classifier: ``test_loss``, ``test_accuracy``, ``test_macro_f1``, ``test_weighted_f1``, ``test_auc``,
  ``test_f1_<Class>``, plus a confusion matrix, ROC curves and a classification report as files;
- DCGAN: ``test_swd`` (sliced Wasserstein distance between generated images and the test images, not the
  validation images that chose the epoch) and ``test_ms_ssim_diversity``, plus a sample grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mritune.trainables.dataset import MRIDataset

# Fixed seeds: the same checkpoint evaluated twice gives the same numbers (the gate compares them across searches).
_TEST_NOISE_SEED = 20_240_917
_TEST_SWD_SEED = 7


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> file path


def classifier_test_evaluation(model, images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], *,
                               out_dir: str | Path, batch_size: int = 64) -> Evaluation:
    """Test metrics and plots of an in-memory classifier; ``images`` are model inputs (float32 raw pixels)."""
    from mritune.trainables.classification_metrics import classification_metrics, write_classification_artifacts
    from mritune.trainables.reporting import TrainingDiverged

    probs = np.asarray(model.predict(images, batch_size=batch_size, verbose=0))
    if not np.isfinite(probs).all():
        raise TrainingDiverged("classifier diverged: test predictions hold NaN/inf; lower learning_rate")
    metrics = classification_metrics(labels, probs, class_names, prefix="test")
    metrics["test_macro_f1_majority"] = majority_macro_f1(labels, len(class_names))
    artifacts = write_classification_artifacts(labels, probs, class_names, out_dir)
    return Evaluation(metrics=metrics, artifacts=artifacts)


def majority_macro_f1(labels: np.ndarray, num_classes: int) -> float:
    """Macro-F1 of always predicting the most frequent class: the score a model that learned nothing gets."""
    from sklearn.metrics import f1_score

    majority = np.full_like(labels, np.bincount(labels, minlength=num_classes).argmax())
    return float(f1_score(labels, majority, labels=list(range(num_classes)), average="macro", zero_division=0))


def generator_test_evaluation(generator, data: MRIDataset, *, image_size: int, latent_dim: int,
                              out_dir: str | Path) -> Evaluation:
    """SWD and MS-SSIM diversity of a generator's images against the test split, and a sample grid."""
    from mritune.trainables.arrays import resized
    from mritune.trainables.dcgan_training import EVAL_IMAGES, to_unit_range, write_sample_grid
    from mritune.trainables.gan_metrics import mean_ms_ssim, sliced_wasserstein_distance

    if len(data.x_test) < 2:
        raise ValueError("the DCGAN's test evaluation needs at least 2 test images")
    real = to_unit_range(resized(data.x_test[:EVAL_IMAGES], image_size))
    noise = np.random.default_rng(_TEST_NOISE_SEED).standard_normal((len(real), latent_dim)).astype(np.float32)
    fake = np.asarray(generator.predict(noise, batch_size=64, verbose=0), dtype=np.float32)
    if not np.isfinite(fake).all():
        raise ValueError("the generator produces NaN/inf images: it cannot be evaluated")
    metrics = {
        "test_swd": sliced_wasserstein_distance(fake, real, seed=_TEST_SWD_SEED),
        "test_ms_ssim_diversity": mean_ms_ssim(fake, seed=_TEST_SWD_SEED),
    }
    samples = write_sample_grid(fake[:16], Path(out_dir) / "test_samples.png")
    return Evaluation(metrics=metrics, artifacts={"test_samples": str(samples)})


def _evaluate_classifier_checkpoint(folder: Path, state: dict[str, Any], data: MRIDataset,
                                    out_dir: Path) -> Evaluation:
    from mritune.trainables.arrays import as_model_input, check_dataset, resized
    from mritune.trainables.classifier_training import MODEL_FILE

    check_dataset(data)
    if tuple(state.get("class_names", data.class_names)) != tuple(data.class_names):
        raise ValueError(f"checkpoint {folder} was trained on classes {state['class_names']}, not the data's")
    model = _load(folder / MODEL_FILE)
    images = as_model_input(resized(data.x_test, int(state["image_size"])))
    return classifier_test_evaluation(model, images, data.y_test.astype(np.int64), tuple(data.class_names),
                                      out_dir=out_dir)


def _evaluate_generator_checkpoint(folder: Path, state: dict[str, Any], data: MRIDataset,
                                   out_dir: Path) -> Evaluation:
    from mritune.trainables.dcgan_training import GENERATOR_FILE

    generator = _load(folder / GENERATOR_FILE)
    return generator_test_evaluation(generator, data, image_size=int(state["image_size"]),
                                     latent_dim=int(state["latent_dim"]), out_dir=out_dir)


TEST_EVALUATORS: dict[str, Callable[[Path, dict, MRIDataset, Path], Evaluation]] = {
    "classifier": _evaluate_classifier_checkpoint,
    "dcgan": _evaluate_generator_checkpoint,
}


def evaluate_checkpoint(folder: str | Path, data: MRIDataset, *, out_dir: str | Path) -> Evaluation:
    """Test metrics of the model saved in a checkpoint folder (its ``state.json`` says which task it is)."""
    import json

    folder, out_dir = Path(folder), Path(out_dir)
    state = json.loads((folder / "state.json").read_text())
    task = state.get("task")
    if task not in TEST_EVALUATORS:
        raise ValueError(f"checkpoint {folder} is of unknown task {task!r}; expected one of {sorted(TEST_EVALUATORS)}")
    return TEST_EVALUATORS[task](folder, state, data, out_dir)


def _load(path: Path):
    import keras

    import mritune.trainables.layers  # noqa: F401  (registers the custom layers before any load)

    return keras.saving.load_model(path, compile=False, safe_mode=True)
