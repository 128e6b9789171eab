"""A re-run or a replayed stage stops at its epoch with the config's ``epochs`` left as the trial's horizon, so the
DCGAN's cosine learning rates (over ``epochs``) are the trial's at every epoch it trains (trainables/schedule.py,
trainables/checkpointing.stop_epoch, platform/registry/rerun.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mritune.trainables.checkpointing import stop_epoch
from mritune.trainables.errors import UserInputError
from mritune.trainables.schedule import Segment, Stage, replay_stages
from tests.trainables.training_helpers import TINY_CLASSIFIER, TINY_DCGAN, few_tf_threads, saved_learning_rate

# Four epochs of cosine rates: epoch 2 trains at x0.85 of lr_g/lr_d; a training of two epochs would be at x0.5.
TRIAL = {**TINY_DCGAN, "epochs": 4, "lr_g": 4e-4, "lr_d": 8e-4, "lr_schedule": "cosine"}
GAN_FILES = ("generator.keras", "discriminator.keras")


@pytest.fixture(scope="module", autouse=True)
def _threads():
    few_tf_threads()


@pytest.fixture(scope="module")
def dcgan_trial(tiny_dataset, tmp_path_factory) -> list:
    """The reports of a trial of TRIAL as a Tune trial trains it: every epoch to its last, a checkpoint each."""
    from mritune.trainables.dcgan.training import train_dcgan

    reports: list = []
    train_dcgan(TRIAL, tiny_dataset, reports.append, workdir=str(tmp_path_factory.mktemp("trial")),
                evaluate_test=False)
    return reports


def test_a_schedule_a_rerun_wrote_before_stop_epochs_replays_to_the_same_epochs():
    """Re-runs once set each stage's ``epochs`` to its stop and wrote that into their ``schedule.json``: replayed
    now, every stage still stops where it did (its ``epochs``)."""
    old = [Segment(1, "t-seed5", {"lr": 0.1, "epochs": 2, "seed": 5}),
           Segment(3, "t-seed5", {"lr": 0.05, "epochs": 4, "seed": 5})]
    stages = replay_stages(old, until_epoch=4, overrides={"seed": 9})
    assert [(stage.config["epochs"], stage.until_epoch) for stage in stages] == [(2, 2), (4, 4)]


def test_the_stop_is_the_config_epochs_unless_earlier_and_never_past_them():
    assert stop_epoch(4, None) == 4 and stop_epoch(4, 2) == 2 and stop_epoch(4, 4.0) == 4
    for bad in (0, 5, 2.5, True):
        with pytest.raises(UserInputError, match="until_epoch"):
            stop_epoch(4, bad)


def test_a_classifier_stops_at_its_until_epoch_with_its_planned_epochs_in_the_checkpoint(tiny_dataset, tmp_path):
    from mritune.trainables.classifier.training import train_classifier

    reports: list = []
    result = train_classifier({**TINY_CLASSIFIER, "epochs": 3}, tiny_dataset, reports.append,
                              workdir=str(tmp_path), until_epoch=1)
    assert [report.epoch for report in reports] == [1] and result.epochs_completed == 1
    assert "test_macro_f1" in result.metrics, "the test split is evaluated after the epoch the training stops at"
    state = json.loads((Path(reports[-1].checkpoint_dir) / "state.json").read_text())
    assert (state["epoch"], state["config"]["epochs"]) == (1, 3)


def test_a_dcgan_rerun_to_an_earlier_best_epoch_trains_at_the_trials_rates(dcgan_trial, tiny_dataset, tmp_path):
    """The trial's best epoch is 2 of 4: its re-run (built as the search builds it) trains epochs 1-2 at the
    trial's rates, not at those of a 2-epoch cosine, and its checkpoint says 2 epochs of a 4-epoch config."""
    from mritune.platform.infra.storage import parse_location
    from mritune.platform.registry.rerun import _task_arguments, _train_and_score
    from mritune.platform.tracking.ranking import TrialScore
    from mritune.trainables.schedule import read_schedule
    from tests.platform.search_helpers import tiny_spec

    spec = tiny_spec(tmp_path, task="dcgan", overrides=("scheduler.max_t=4",))
    score = TrialScore(trial_id="t_00000", status="OK", epochs=4, value=1.0, epoch=2, config=dict(TRIAL))
    arguments = _task_arguments(spec, score, 5, parse_location(str(tmp_path / "reruns")))
    result = _train_and_score(**arguments, data=tiny_dataset, indices=None)
    assert result.ok and result.epoch == 2, result.error
    kept, trial_epoch_2 = tmp_path / "reruns" / "t_00000-seed5", Path(dcgan_trial[1].checkpoint_dir)
    for name in GAN_FILES:
        assert saved_learning_rate(kept / name) == pytest.approx(saved_learning_rate(trial_epoch_2 / name))
    state = json.loads((kept / "state.json").read_text())
    assert (state["epoch"], state["config"]["epochs"]) == (2, 4)
    assert [(s.from_epoch, s.config["epochs"]) for s in read_schedule(kept)] == [(1, 4)]
    assert (kept / "artifacts" / "samples.png").is_file(), "the samples of the epoch the re-run stopped at"


def test_a_replayed_dcgan_schedule_trains_each_stage_at_the_trials_rates(dcgan_trial, tiny_dataset, tmp_path):
    """A PBT trial that copied epoch 1 of TRIAL and went on with half its lr_g: its re-run replays epoch 1 with
    TRIAL and epoch 2 with the perturbed config, both on the 4-epoch cosine, as the copying trial trained them."""
    from ray import tune

    from mritune.platform.infra.storage import parse_location
    from mritune.platform.registry.rerun import _task_arguments, _train_and_score
    from mritune.platform.tracking.ranking import TrialScore
    from mritune.trainables.dcgan.training import train_dcgan
    from mritune.trainables.schedule import write_schedule
    from tests.platform.search_helpers import tiny_spec

    perturbed = {**TRIAL, "lr_g": 2e-4}
    copying: list = []  # the copying trial, as Tune resumes it from the copied checkpoint: on to its last epoch
    train_dcgan(perturbed, tiny_dataset, copying.append, resume_from=dcgan_trial[0].checkpoint_dir,
                workdir=str(tmp_path / "copying"), evaluate_test=False)
    best = Path(copying[0].checkpoint_dir)
    write_schedule(best, [Segment(1, "t_00001", dict(TRIAL)), Segment(2, "t_00000", perturbed)])
    spec = tiny_spec(tmp_path, task="dcgan", overrides=(
        "search.algorithm=random", "search.options={}", "search.max_concurrent=null", "search.num_samples=2",
        "registry.enabled=false", "scheduler={name: pbt, max_t: 4, perturbation_interval: 1}"))
    score = TrialScore(trial_id="t_00000", status="OK", epochs=4, value=1.0, epoch=2, config=perturbed,
                       checkpoint=tune.Checkpoint.from_directory(str(best)))
    arguments = _task_arguments(spec, score, 5, parse_location(str(tmp_path / "reruns")))
    result = _train_and_score(**arguments, data=tiny_dataset, indices=None)
    assert result.ok and result.epoch == 2, result.error
    for name in GAN_FILES:
        assert saved_learning_rate(tmp_path / "reruns" / "t_00000-seed5" / name) == \
            pytest.approx(saved_learning_rate(best / name))
    assert arguments["stages"] == [Stage(config={**TRIAL, "seed": 5}, until_epoch=1),
                                   Stage(config={**perturbed, "seed": 5}, until_epoch=2)]
