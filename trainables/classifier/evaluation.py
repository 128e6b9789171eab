"""The classifier's test-split evaluation: ``test_loss``, ``test_accuracy``, ``test_macro_f1``,
``test_weighted_f1``, ``test_auc``, ``test_f1_<Class>``, plus a confusion matrix, ROC curves and a classification
report as files. ``mritune train`` calls :func:`classifier_test_evaluation` on the model it just trained; the
platform's registry calls :func:`evaluate_classifier_checkpoint` (through the task registry) on the checkpoint a
search ranked best, so both compute the same metrics the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mritune.trainables.data.dataset import MRIDataset
from mritune.trainables.errors import UserInputError
from mritune.trainables.evaluation import Evaluation, load_model


def classifier_test_evaluation(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray,
                               class_names: tuple[str, ...], *, out_dir: str | Path) -> Evaluation:
    """Test metrics and plots of a classifier; ``predict`` maps model inputs (float32 raw pixels) to
    probabilities (a training passes the compiled predictor it already has, so nothing is traced again)."""
    from mritune.trainables.classifier.metrics import classification_metrics, write_classification_artifacts
    from mritune.trainables.reporting import TrainingDiverged

    probs = np.asarray(predict(images))
    if not np.isfinite(probs).all():
        raise TrainingDiverged("classifier diverged: test predictions hold NaN/inf; lower learning_rate")
    metrics = classification_metrics(labels, probs, class_names, prefix="test")
    metrics["test_macro_f1_majority"] = majority_macro_f1(labels, len(class_names))
    artifacts = write_classification_artifacts(labels, probs, class_names, out_dir)
    return Evaluation(metrics=metrics, artifacts=artifacts, outputs=probs)


def majority_macro_f1(labels: np.ndarray, num_classes: int) -> float:
    """Macro-F1 of always predicting the most frequent class: the score a model that learned nothing gets."""
    from sklearn.metrics import f1_score

    majority = np.full_like(labels, np.bincount(labels, minlength=num_classes).argmax())
    return float(f1_score(labels, majority, labels=list(range(num_classes)), average="macro", zero_division=0))


def evaluate_classifier_checkpoint(folder: Path, state: dict[str, Any], data: MRIDataset,
                                   out_dir: Path) -> Evaluation:
    """The test evaluation of the classifier saved in a checkpoint folder (``state`` is its state.json)."""
    from mritune.trainables.classifier import MODEL_FILE
    from mritune.trainables.compiled_steps import BatchPredictor
    from mritune.trainables.data.arrays import as_model_input, check_dataset, resized

    check_dataset(data)
    if tuple(state.get("class_names", data.class_names)) != tuple(data.class_names):
        raise UserInputError(f"checkpoint {folder} was trained on classes {state['class_names']}, not the data's")
    model = load_model(folder / MODEL_FILE)
    images = as_model_input(resized(data.x_test, int(state["image_size"])))
    return classifier_test_evaluation(BatchPredictor(model=model, batch_size=64), images,
                                      data.y_test.astype(np.int64), tuple(data.class_names), out_dir=out_dir)


def macro_f1(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Macro-F1 over ``num_classes`` classes, as sklearn's ``f1_score(average="macro", zero_division=0)`` with
    every class listed: a class neither present nor predicted scores 0. NumPy only, for thousands of resamples."""
    confusion = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    confusion = confusion.reshape(num_classes, num_classes)
    true_positive = np.diag(confusion).astype(np.float64)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)  # 2 tp + fp + fn
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(num_classes), where=denominator > 0)
    return float(f1.mean())


@dataclass(frozen=True, eq=False)
class MacroF1Resampler:
    """``test_macro_f1`` of a checkpoint's test probabilities on a resample of the test images
    (``trainables.evaluation.GateResampler``)."""

    labels: np.ndarray  # the test labels, in the evaluator's order
    num_classes: int
    resamples: int = 1000  # cheap: a bincount per resample

    @property
    def n_images(self) -> int:
        return len(self.labels)

    def __call__(self, outputs: np.ndarray, indices: np.ndarray) -> float:
        predicted = np.asarray(outputs).argmax(axis=1)
        return macro_f1(self.labels[indices], predicted[indices], self.num_classes)


def classifier_test_resampler(data: MRIDataset, image_size: int) -> MacroF1Resampler:
    """The classifier's gate metric on resampled test images (registered as ``Task.test_resampler``)."""
    return MacroF1Resampler(labels=data.y_test.astype(np.int64), num_classes=len(data.class_names))
