"""Helpers shared by the classifier/DCGAN/trainable tests: quiet TensorFlow with few threads, tiny configs."""

from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# small_cnn at 32 px: a one-epoch training takes a few seconds on one core.
TINY_CLASSIFIER = {"backbone": "small_cnn", "image_size": 32, "epochs": 1, "batch_size": 32, "dense_units": 16}
TINY_DCGAN = {"image_size": 32, "epochs": 1, "batch_size": 32, "base_filters": 8, "latent_dim": 16}


def few_tf_threads() -> None:
    """One TensorFlow thread: this machine's two cores are shared by several test runs."""
    from mritune.trainables.runtime import configure_runtime

    configure_runtime(cpus=1)


def saved_learning_rate(path) -> float:
    """The learning rate of the optimizer saved in a ``.keras`` file."""
    import keras
    import numpy as np

    import mritune.trainables.layers  # noqa: F401

    return float(np.asarray(keras.saving.load_model(path, safe_mode=True).optimizer.learning_rate))


def assert_finite_metrics(metrics: dict, expected: list[str]) -> None:
    missing = [key for key in expected if key not in metrics]
    assert not missing, f"missing metrics: {missing}"
    bad = {key: value for key, value in metrics.items() if not math.isfinite(value)}
    assert not bad, f"non-finite metrics: {bad}"


def comparable(metrics: dict) -> dict:
    """Metrics without wall-clock times, for reproducibility comparisons."""
    return {key: value for key, value in metrics.items() if not key.endswith("_seconds")}


class RecordingObserver:
    """A TrialObserver that appends its calls to a JSON-lines file (it runs in the trial's worker process).

    With ``sabotage`` it plays a broken trial: at epoch 1 it overwrites the checkpoint's generator weights with
    NaN before Tune stores it, and at epoch 2 (first attempt only) it raises as if the worker had crashed, so Tune
    restarts the trial from the poisoned epoch-1 checkpoint.
    """

    def __init__(self, events_file: str, sabotage: bool = False):
        self.events_file, self.sabotage = events_file, sabotage

    def _record(self, **event) -> None:
        import json

        with open(self.events_file, "a") as handle:
            handle.write(json.dumps(event) + "\n")

    def on_start(self, config: dict, trial_id: str) -> None:
        import tensorflow as tf

        self._record(event="start", trial_id=trial_id, threads=tf.config.threading.get_intra_op_parallelism_threads())

    def on_epoch(self, report) -> None:
        from pathlib import Path

        self._record(event="epoch", epoch=report.epoch, checkpoint=report.checkpoint_dir,
                     artifacts=sorted(report.artifacts), images=sorted(report.images))
        crashed = Path(self.events_file + ".crashed")
        if self.sabotage and report.epoch == 1 and not crashed.exists():
            from tests.trainables.test_dcgan_training import poison_generator

            poison_generator(report.checkpoint_dir)
        if self.sabotage and report.epoch == 2 and not crashed.exists():
            crashed.touch()
            raise RuntimeError("simulated worker crash")

    def on_end(self, status: str, result, error: str | None) -> None:
        self._record(event="end", status=status, error=error,
                     model_exists=bool(result) and __import__("os").path.exists(result.model_path))


def read_events(events_file) -> list[dict]:
    import json
    from pathlib import Path

    path = Path(events_file)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
