"""The fault checker asks "which trial is best" with the platform's one rule, ties included (platform/ranking).

Two trials tie on their best val macro-F1. The search registers the one ``ranking.sort_scores`` puts first; the
checker must expect that same trial whatever order MLflow returns the runs in (it used to take the first in dict
order and failed by chance whenever two trials tied).
"""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from mritune.platform.tracking.ranking import TrialScore, sort_scores
from tests.faults.checker import _assert_registration
from tests.mlflow_stores import sqlite_store

TIED = 0.4668


def _trial_run(client: MlflowClient, experiment_id: str, parent_id: str, trial_id: str, scores: list[float]):
    run = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent_id, "mritune.trial_id": trial_id})
    for step, value in enumerate(scores, start=1):
        client.log_metric(run.info.run_id, "val_macro_f1", value, step=step)
    client.set_terminated(run.info.run_id, "FINISHED")
    return client.get_run(run.info.run_id)


@pytest.mark.parametrize("first_created", ["zz-trial", "aa-trial"])
def test_checker_expects_the_trial_the_ranking_puts_first_when_scores_tie(tmp_path, first_created):
    client = MlflowClient(sqlite_store(tmp_path / "mlflow.db"))
    experiment_id = client.create_experiment("ties", artifact_location=str(tmp_path / "artifacts"))
    parent = client.create_run(experiment_id)
    second = "aa-trial" if first_created == "zz-trial" else "zz-trial"
    runs = [_trial_run(client, experiment_id, parent.info.run_id, first_created, [0.2, TIED, 0.3]),
            _trial_run(client, experiment_id, parent.info.run_id, second, [TIED, 0.1])]

    winner = sort_scores([TrialScore(trial_id=t, status="OK", epochs=2, value=TIED, epoch=2)
                          for t in (first_created, second)], mode="max")[0].trial_id
    assert winner == "aa-trial"  # ties go to the smaller trial id, whatever the order they came in
    client.create_registered_model("ties-model")
    client.create_model_version("ties-model", source=str(tmp_path / "model"), run_id=parent.info.run_id,
                                tags={"search_run_id": parent.info.run_id, "trial_id": winner})

    _assert_registration(client, "ties-model", parent.info.run_id, runs, "val_macro_f1", "max", None, None)

    client.set_model_version_tag("ties-model", "1", "trial_id", "zz-trial")  # the other tied trial: wrong
    with pytest.raises(AssertionError):
        _assert_registration(client, "ties-model", parent.info.run_id, runs, "val_macro_f1", "max", None, None)
