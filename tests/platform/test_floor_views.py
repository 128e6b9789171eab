"""A DCGAN score is shown beside its real-vs-real floor wherever a person reads it, the floor named by the task's
``floor_metrics`` (trainables/tasks.py): the console's lines, the results table, the version's description (with
and without re-runs). The whole path through a real search: tests/platform/test_search_e2e.py's DCGAN test."""

from __future__ import annotations

import pytest

from mritune.platform.registry.promotion import Interval
from mritune.platform.registry.registration import version_description
from mritune.platform.registry.rerun_summary import ConfigReruns, RerunResult, RerunSummary
from mritune.platform.tracking.display import floor_text
from mritune.platform.tracking.ranking import TrialScore
from mritune.platform.views import console
from mritune.platform.views.outcome import format_table
from mritune.platform.views.search_views import floor_metric
from tests.platform.search_helpers import tiny_spec


def _trial(trial_id: str, epochs: int):
    from ray.tune.experiment import Trial

    trial = Trial("mritune_trainable", config={"lr_g": 2e-4}, trial_id=trial_id, stub=True)
    trial.update_last_result({"training_iteration": epochs})
    return trial


@pytest.mark.parametrize("floor, text", [(18.25, ", floor 18.25"), (0.038309, ", floor 0.03831"), (None, ""),
                                         (float("nan"), ""), (True, "")])
def test_a_floor_reads_the_same_everywhere(floor, text):
    assert floor_text(floor) == text


def test_the_spec_finds_the_floor_of_its_metric_in_the_task(tmp_path):
    dcgan, classifier = tiny_spec(tmp_path, task="dcgan"), tiny_spec(tmp_path)
    assert (floor_metric(dcgan), floor_metric(dcgan, "test_swd"), floor_metric(classifier)) == (
        "fd_floor", "test_swd_floor", None)


def test_console_lines_show_the_score_beside_the_floor_of_the_same_epoch():
    lines: list[str] = []
    progress = console.ConsoleProgress(metric="fd", mode="min", epochs=2, searched=["lr_g"], echo=lines.append,
                                       clock=lambda: 0.0, floor_metric="fd_floor")
    first, second = _trial("a", 2), _trial("b", 1)
    progress.on_trial_result(0, [first], first, {"fd": 5.0, "fd_floor": 0.04})
    progress.on_trial_result(0, [first], first, {"fd": 3.25, "fd_floor": 0.04})
    progress.on_trial_result(0, [first], first, {"fd": 4.0, "fd_floor": 0.04})  # worse: the best stays
    progress.on_trial_complete(0, [first, second], first)
    progress.on_trial_result(0, [first, second], second, {"fd": 7.5, "fd_floor": 0.04})
    progress.on_trial_complete(0, [first, second], second)
    assert "trial a completed 2 epochs: fd 3.2500, floor 0.04 | lr_g=0.0002" in lines[0]
    assert "trial b stopped by ASHA at epoch 1: fd 7.5000, floor 0.04 |" in lines[1]
    assert progress.summary([first, second]).endswith("best fd 3.2500, floor 0.04 (trial a)")


def test_a_task_without_floors_prints_as_before():
    lines: list[str] = []
    progress = console.ConsoleProgress(metric="val_macro_f1", mode="max", epochs=1, searched=["lr_g"],
                                       echo=lines.append, clock=lambda: 0.0)
    trial = _trial("c", 1)
    progress.on_trial_result(0, [trial], trial, {"val_macro_f1": 0.5, "fd_floor": 0.04})
    progress.on_trial_complete(0, [trial], trial)
    assert "val_macro_f1 0.5000 | lr_g" in lines[0] and "floor" not in lines[0]


def test_the_results_table_carries_the_floor_column_beside_the_score():
    from mritune.platform.tracking.search_run import results_table

    scores = [TrialScore(trial_id="a", status="OK", epochs=2, value=3.25, epoch=2,
                         metrics={"fd": 3.25, "fd_floor": 0.0383}, config={"lr_g": 2e-4})]
    rows = results_table(scores, metric="fd", floor="fd_floor")
    assert list(rows[0])[:6] == ["trial_id", "status", "epochs", "fd", "fd_floor", "best_epoch"]
    table = format_table(rows, "fd", floor="fd_floor")
    assert table.splitlines()[0].startswith("| trial | status | epochs | fd | fd_floor | at epoch |")
    assert "| a | OK | 2 | 3.2500 | 0.0383 | 2 |" in table
    assert "fd_floor" not in format_table(results_table(scores, metric="fd"), "fd")


def test_the_version_description_gives_both_scores_with_their_floors(tmp_path):
    spec = tiny_spec(tmp_path, task="dcgan")
    trial = TrialScore(trial_id="a", status="OK", epochs=2, value=3.25, epoch=2)
    metrics = {"fd": 3.25, "fd_floor": 0.0383, "test_fd": 2.5, "test_fd_floor": 0.041}
    text = version_description(spec=spec, trial=trial, alias="champion", reason="no champion yet",
                               gate_metric="test_fd", metrics=metrics)
    assert "chosen on validation fd 3.25, floor 0.0383. Test test_fd 2.5, floor 0.041. @champion" in text


def test_the_rerun_version_description_gives_the_floors_too(tmp_path):
    spec = tiny_spec(tmp_path, task="dcgan")
    metrics = {"fd": 3.0, "fd_floor": 0.0383, "test_fd": 2.5, "test_fd_floor": 0.041}
    results = tuple(RerunResult(trial_id="a", seed=seed, epoch=2, val=value, test=value - 0.5, metrics=metrics)
                    for seed, value in ((11, 3.0), (12, 3.5)))
    config = ConfigReruns(rank=1, trial_id="a", trial_value=2.9, epoch=2, searched={"lr_g": 2e-4}, results=results,
                          interval=Interval(mean=2.75, low=2.4, high=3.1))
    summary = RerunSummary(metric="fd", mode="min", gate_metric="test_fd", gate_mode="min", top_k=1, seeds=(11, 12),
                           n_test_images=30, image_resamples=100, configs=(config,), chosen=0, registered_seed=11,
                           seconds=10.0)
    text = version_description(spec=spec, trial=TrialScore(trial_id="a", status="OK", epochs=2, value=3.0, epoch=2),
                               alias="champion", reason="no champion yet", gate_metric="test_fd", metrics=metrics,
                               reruns=summary)
    assert "validation fd (3, floor 0.0383)" in text and "this re-run's own 2.5, floor 0.041." in text
