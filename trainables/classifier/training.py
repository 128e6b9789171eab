"""`train_classifier`: one classifier training, reporting validation metrics and a checkpoint every epoch.

Knows nothing of Ray or MLflow: the caller passes a ``report`` callable (the Tune wrapper, the CLI, a test).
With ``evaluate_test`` (``mritune train``) the final epoch's report also carries the test-split metrics and the
plot/report files; a search passes False and evaluates only the checkpoint it registers.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mritune.trainables.checkpointing import (
    epoch_dir,
    epoch_seed,
    finished_result,
    resume_point,
    set_learning_rate,
    stop_epoch,
    write_state,
)
from mritune.trainables.classifier import MODEL_FILE, TASK
from mritune.trainables.classifier.config import ClassifierConfig
from mritune.trainables.classifier.evaluation import classifier_test_evaluation
from mritune.trainables.classifier.metrics import classification_metrics
from mritune.trainables.classifier.model import recompute_batch_norm_statistics
from mritune.trainables.compiled_steps import BatchPredictor, build_optimizer
from mritune.trainables.data.arrays import as_model_input, check_dataset, resized
from mritune.trainables.data.dataset import MRIDataset
from mritune.trainables.errors import UserInputError
from mritune.trainables.reporting import EpochReport, Report, TrainingDiverged, TrainingResult

# Keys whose change makes a checkpoint's model unusable for the config.
ARCHITECTURE_KEYS = ("backbone", "alpha", "image_size", "dense_units", "augmentation")


@dataclass(frozen=True)
class ClassifierArrays:
    x_train: np.ndarray  # float32 (N, S, S, 1), raw 0..255
    y_train: np.ndarray  # int labels
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @classmethod
    def from_dataset(cls, data: MRIDataset, image_size: int) -> "ClassifierArrays":
        check_dataset(data)

        def prepare(images: np.ndarray) -> np.ndarray:
            return as_model_input(resized(images, image_size))

        return cls(
            x_train=prepare(data.x_train), y_train=data.y_train.astype(np.int64),
            x_val=prepare(data.x_val), y_val=data.y_val.astype(np.int64),
            x_test=prepare(data.x_test), y_test=data.y_test.astype(np.int64),
            class_names=tuple(data.class_names),
        )


def train_classifier(
    config: Mapping[str, Any],
    data: MRIDataset,
    report: Report,
    *,
    resume_from: str | None = None,
    workdir: str | None = None,
    evaluate_test: bool = True,
    test_every_epoch: bool = False,
    until_epoch: int | None = None,
) -> TrainingResult:
    """Train the classifier described by ``config`` on ``data``; resume after the epoch saved in ``resume_from``.

    Every epoch is reported (``report(EpochReport)``) with its validation metrics (``val_macro_f1``, ``val_loss``,
    ...) and the folder of its checkpoint (``state.json`` + ``model.keras``).

    Args:
        config: Hyperparameters, checked by ``ClassifierConfig.from_dict`` (missing keys take their defaults).
        data: The dataset with its train/validation/test splits (uint8 grayscale squares).
        report: Called once per epoch with an ``EpochReport``.
        resume_from: A checkpoint folder of an earlier epoch of the same architecture and classes, or None.
        workdir: Where the epochs' checkpoint folders go; None: a new temporary folder.
        evaluate_test: After the last epoch, also report the test split's metrics and plots (``mritune train``).
            A search passes False: it ranks trials on validation and evaluates only the checkpoint it registers.
        test_every_epoch: Also report the test split's metrics (``test_macro_f1``, ``test_loss``, ...) every epoch,
            for a recorded learning-curve table (``benchmarks/curves``); nothing that selects a model reads them.
        until_epoch: Stop after this epoch (at most the config's ``epochs``, which stays the training's planned
            length); None: after ``epochs``. A re-run to a trial's best epoch and a replayed schedule's stages
            pass it (``checkpointing.stop_epoch``).

    Returns:
        The last epoch's metrics, model path and artifacts.

    Raises:
        ValueError: A bad config key or value, a dataset that does not fit (shapes, empty splits), or a
            checkpoint of another architecture or other classes.
        TrainingDiverged: A non-finite loss or NaN/inf predictions (lower the learning rate).

    Example:
        >>> from mritune.trainables.data.synthetic import load_synthetic
        >>> data = load_synthetic(n=320, size=32, seed=0)  # doctest: +SKIP
        >>> result = train_classifier({"backbone": "small_cnn", "image_size": 32, "epochs": 2}, data,
        ...                           lambda epoch: print(epoch.metrics["val_macro_f1"]))  # doctest: +SKIP
    """
    import keras

    import mritune.trainables.layers  # noqa: F401  (registers the custom layers before any load)
    from mritune.trainables.classifier.model import build_classifier

    cfg = ClassifierConfig.from_dict(config)
    last_epoch = stop_epoch(cfg.epochs, until_epoch)
    arrays = ClassifierArrays.from_dataset(data, cfg.image_size)
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mritune-classifier-"))
    start_epoch, state = resume_point(resume_from, task=TASK.name, config=cfg.to_dict(),
                                      architecture_keys=ARCHITECTURE_KEYS)
    if state is not None and tuple(state.get("class_names", arrays.class_names)) != arrays.class_names:
        raise UserInputError(f"cannot resume: checkpoint classes {state['class_names']} differ from the data's")
    if state is not None and start_epoch >= last_epoch:
        return finished_result(resume_from, state, MODEL_FILE)
    keras.utils.set_random_seed(epoch_seed(cfg.seed, start_epoch))
    if state is None:
        model = build_classifier(cfg, num_classes=len(arrays.class_names))
    else:
        model = keras.saving.load_model(Path(resume_from) / MODEL_FILE, safe_mode=True)
        set_learning_rate(model.optimizer, cfg.learning_rate)  # the loaded one keeps the rate it was saved with
    build_optimizer(model)  # one trace of the train step instead of two (see compiled_steps)
    handler = _EpochEnd(cfg=cfg, arrays=arrays, report=report, workdir=folder, model=model, last_epoch=last_epoch,
                        evaluate_test=evaluate_test, test_every_epoch=test_every_epoch)
    model.fit(
        arrays.x_train,
        keras.utils.to_categorical(arrays.y_train, len(arrays.class_names)),
        batch_size=cfg.batch_size,
        epochs=last_epoch,
        initial_epoch=start_epoch,
        shuffle=True,
        class_weight=class_weights(cfg, arrays.y_train, len(arrays.class_names)),
        callbacks=[handler.keras_callback()],
        verbose=0,
    )
    return handler.result


def class_weights(cfg: ClassifierConfig, labels: np.ndarray, num_classes: int) -> dict[int, float] | None:
    """``balanced``: n_samples / (n_classes * count) per class (sklearn); classes absent from train get 1.0."""
    if cfg.class_weighting == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    by_class = {int(c): float(w) for c, w in zip(present, weights)}
    return {c: by_class.get(c, 1.0) for c in range(num_classes)}


class _EpochEnd:
    """End-of-epoch work, wired into ``model.fit`` through a LambdaCallback: metrics, checkpoint, report."""

    def __init__(self, *, cfg: ClassifierConfig, arrays: ClassifierArrays, report: Report, workdir: Path, model,
                 last_epoch: int, evaluate_test: bool = True, test_every_epoch: bool = False):
        self.cfg, self.arrays, self.report, self.workdir, self.model = cfg, arrays, report, workdir, model
        self.last_epoch = last_epoch
        self.evaluate_test, self.test_every_epoch = evaluate_test, test_every_epoch
        self.result: TrainingResult | None = None
        self._started = 0.0
        self._predictor = BatchPredictor(model=model, batch_size=max(cfg.batch_size, 64))

    def keras_callback(self):
        import keras

        return keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs=None: self._begin(),
            on_epoch_end=lambda epoch, logs=None: self._end(epoch + 1, logs or {}),
        )

    def _begin(self) -> None:
        self._started = time.perf_counter()

    def _end(self, epoch: int, logs: dict) -> None:
        train_seconds = time.perf_counter() - self._started
        train_loss = float(logs.get("loss", math.nan))
        if not math.isfinite(train_loss):
            raise TrainingDiverged(
                f"classifier diverged at epoch {epoch}: training loss is {train_loss}; lower learning_rate"
            )
        metrics: dict[str, float] = {"epoch": epoch, "train_loss": train_loss, "train_seconds": train_seconds}
        # Evaluation (and the checkpoint) use batch-norm statistics of these weights, not a lagging average.
        recompute_batch_norm_statistics(self.model, self.arrays.x_train, batch_size=self.cfg.batch_size,
                                        seed=epoch_seed(self.cfg.seed, epoch))
        metrics.update(self._evaluate("val", self.arrays.x_val, self.arrays.y_val))
        if self.test_every_epoch:
            metrics.update(self._evaluate("test", self.arrays.x_test, self.arrays.y_test))
        folder = epoch_dir(self.workdir, epoch)
        self.model.save(folder / MODEL_FILE)
        artifacts: dict[str, str] = {}
        if epoch == self.last_epoch and self.evaluate_test:
            evaluation = classifier_test_evaluation(
                self._predictor, self.arrays.x_test, self.arrays.y_test, self.arrays.class_names,
                out_dir=folder / "artifacts",
            )
            metrics.update(evaluation.metrics)
            artifacts = dict(evaluation.artifacts)
        write_state(folder, self._state(epoch, metrics, artifacts, folder))
        self.report(EpochReport(epoch=epoch, metrics=metrics, checkpoint_dir=str(folder), artifacts=artifacts))
        self.result = TrainingResult(
            metrics=metrics, model_path=str(folder / MODEL_FILE), artifacts=artifacts, epochs_completed=epoch
        )

    def _predict(self, images: np.ndarray, split: str) -> np.ndarray:
        probs = self._predictor(images)
        if not np.isfinite(probs).all():
            raise TrainingDiverged(f"classifier diverged: {split} predictions hold NaN/inf; lower learning_rate")
        return probs

    def _evaluate(self, split: str, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        probs = self._predict(images, split)
        return classification_metrics(labels, probs, self.arrays.class_names, prefix=split)

    def _state(self, epoch: int, metrics: dict, artifacts: dict[str, str], folder: Path) -> dict:
        return {
            "task": TASK.name,
            "epoch": epoch,
            "config": self.cfg.to_dict(),
            "image_size": self.cfg.image_size,
            "class_names": list(self.arrays.class_names),
            # fit() draws its shuffles and dropout masks from the Keras global seed; a resumed run reseeds it
            # from (seed, epoch), so a restart at the same epoch replays the same randomness.
            "rng": {"keras_seed": epoch_seed(self.cfg.seed, epoch)},
            "metrics": metrics,
            "artifacts": {name: str(Path(path).relative_to(folder)) for name, path in artifacts.items()},
        }
