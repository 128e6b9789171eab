"""A re-run of a PBT/PB2 trial replays its hyperparameter schedule (platform/registry/rerun.py), in process."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trainables.training_helpers import TINY_CLASSIFIER, few_tf_threads


@pytest.fixture(scope="module", autouse=True)
def _threads():
    few_tf_threads()


def _saved_learning_rate(path) -> float:
    import keras

    import mritune.trainables.layers  # noqa: F401

    return float(np.asarray(keras.saving.load_model(path, safe_mode=True).optimizer.learning_rate))


def test_a_rerun_replays_a_schedule_stage_by_stage(tiny_dataset, tmp_path):
    """The re-run of a PBT trial trains its schedule from scratch: each stage resumes the previous one with its
    own config, and the re-run's checkpoint records the stages (platform/registry/rerun.py)."""
    from mritune.platform.infra.storage import parse_location
    from mritune.platform.registry.rerun import _train_and_score
    from mritune.trainables.schedule import read_schedule, replay_stages, Segment

    schedule = [Segment(1, "t_00001", {**TINY_CLASSIFIER, "learning_rate": 1e-3, "epochs": 3}),
                Segment(2, "t_00000", {**TINY_CLASSIFIER, "learning_rate": 5e-3, "epochs": 3})]
    stages = replay_stages(schedule, until_epoch=2, overrides={"seed": 11})
    assert [(s.config["learning_rate"], s.config["epochs"], s.until_epoch, s.config["seed"]) for s in stages] == \
        [(1e-3, 3, 1, 11), (5e-3, 3, 2, 11)], "each stage stops at its stretch's end; epochs stays the horizon"
    destination = parse_location(str(tmp_path / "kept"))
    result = _train_and_score(task="classifier", trial_id="t_00000", stages=stages, data=tiny_dataset,
                              metric="val_macro_f1", cpus=1, indices=None, destination=destination, speedups=True)
    assert result.ok and result.epoch == 2 and result.seed == 11
    kept = tmp_path / "kept"
    assert _saved_learning_rate(kept / "model.keras") == pytest.approx(5e-3)
    replayed = read_schedule(kept)
    assert [(s.from_epoch, s.config["learning_rate"]) for s in replayed] == [(1, 1e-3), (2, 5e-3)]
