"""trainables/schedule.py: the hyperparameter schedule a checkpoint carries, and the stages that replay it."""

from __future__ import annotations

import numpy as np

from mritune.trainables.schedule import (Segment, Stage, extended, read_schedule, replay_stages, stages_schedule,
                                         write_schedule)


def test_a_copy_keeps_the_copied_schedule_up_to_its_epoch_and_adds_a_segment(tmp_path):
    source = [Segment(1, "b", {"lr": 0.1}), Segment(4, "b2", {"lr": 0.2})]
    schedule = extended(source, resumed_epoch=3, trial_id="a", config={"lr": np.float32(0.25)})
    assert schedule == [Segment(1, "b", {"lr": 0.1}), Segment(4, "a", {"lr": float(np.float32(0.25))})]
    write_schedule(tmp_path, schedule)
    assert read_schedule(tmp_path) == schedule


def test_a_restart_of_the_same_lineage_adds_nothing_and_a_fresh_training_starts_at_one():
    own = [Segment(1, "a", {"lr": 0.1})]
    assert extended(own, resumed_epoch=2, trial_id="a", config={"lr": 0.1}) == own
    assert extended([], resumed_epoch=0, trial_id="a", config={"lr": 0.1}) == own


def test_replay_stages_merge_equal_configs_and_stop_at_the_epoch():
    segments = [Segment(1, "a", {"lr": 0.1, "epochs": 9}), Segment(3, "b", {"lr": 0.1, "epochs": 9}),
                Segment(5, "b", {"lr": 0.05, "epochs": 9}), Segment(8, "c", {"lr": 0.01, "epochs": 9})]
    stages = replay_stages(segments, until_epoch=6, overrides={"seed": 3})
    assert stages == [Stage(config={"lr": 0.1, "epochs": 9, "seed": 3}, until_epoch=4),
                      Stage(config={"lr": 0.05, "epochs": 9, "seed": 3}, until_epoch=6)]
    assert [(s.from_epoch, s.config) for s in stages_schedule(stages, trial_id="r")] == [
        (1, {"lr": 0.1, "epochs": 9, "seed": 3}), (5, {"lr": 0.05, "epochs": 9, "seed": 3})]


def test_a_checkpoint_without_a_schedule_reads_as_empty(tmp_path):
    assert read_schedule(tmp_path) == []
