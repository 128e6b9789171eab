"""Kill the driver of a running search, resume it, and check nothing is run or recorded twice.

Fault scenario 3 of issue 12: the driver SIGKILLed mid-search (GPyOpt; FIFO by default, ASHA in the slow run),
then `mritune resume <spec file>` (found under the spec's storage_path); ends with the fault suite's checker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

import pytest

from tests.faults.checker import assert_nothing_lost, tune_trial_ids
from tests.fixtures_processes import wait_until
from tests.platform.search_helpers import child_runs, tiny_spec

DEADLINE_S = 300


@pytest.mark.parametrize("scheduler", ["fifo", pytest.param("asha", marks=pytest.mark.slow)])
def test_resume_after_killing_the_driver(tmp_path, scheduler):
    from mlflow.tracking import MlflowClient

    spec = tiny_spec(tmp_path, overrides=("search.num_samples=4", "search.max_concurrent=2",
                                                f"scheduler.name={scheduler}"))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    env = {**os.environ, "MRITUNE_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    mritune = str(Path(sys.executable).with_name("mritune"))
    driver = subprocess.Popen([mritune, "search", str(spec_file)], cwd=tmp_path, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "driver.log").open("w"))
    client = MlflowClient(spec.tracking.uri)

    def finished_trials():
        experiment = client.get_experiment_by_name(spec.experiment)
        if experiment is None:
            return None
        runs = client.search_runs([experiment.experiment_id], "tags.`mritune.role` = 'trial' and "
                                  "attributes.status = 'FINISHED'")
        return runs

    try:
        done_before = wait_until(finished_trials, timeout_s=DEADLINE_S, what="a first finished trial", process=driver)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    finished_ids = {run.info.run_id for run in done_before}

    elsewhere = tmp_path / "elsewhere"  # resume finds the search under the spec's storage_path, not ./ray_results
    elsewhere.mkdir()
    resumed = subprocess.run([mritune, "resume", str(spec_file)], cwd=elsewhere,
                             env=env, capture_output=True, text=True, timeout=DEADLINE_S)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # Tune's "Failed to fetch metrics" for every trial (their result.json is not written: metrics are in MLflow).
    assert "Failed to fetch metrics" not in resumed.stdout + resumed.stderr, resumed.stderr[-3000:]

    experiment_id = client.get_experiment_by_name(spec.experiment).experiment_id
    parents = client.search_runs([experiment_id], "tags.`mritune.role` = 'search'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    every_run = child_runs(client, experiment_id, parents[0].info.run_id)
    assert all(run.info.status != "RUNNING" for run in every_run)
    # A trial the killed driver had started but not yet saved is unknown to the resumed experiment (a reused actor
    # starts the next trial at once): its run is kept, KILLED and tagged, and never counted as one of the trials.
    orphans = [run for run in every_run if "mritune.orphaned" in run.data.tags]
    assert all(run.info.status == "KILLED" and run.info.run_id not in finished_ids for run in orphans)
    assert len(orphans) <= 2, "at most the trials running when the driver died"
    children = [run for run in every_run if run not in orphans]
    trial_ids = [run.data.tags["mritune.trial_id"] for run in children]
    assert len(trial_ids) == len(set(trial_ids)) == spec.search.num_samples, "no trial has two MLflow runs"
    for run in children:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_macro_f1")]
        assert len(steps) == len(set(steps)), f"epochs logged twice in {run.info.run_id}: {steps}"
        if run.info.run_id in finished_ids:
            assert run.info.status == "FINISHED"
    assert "Registered:" in resumed.stdout
    # The searcher's state came back from disk: no configuration was suggested twice.
    suggested = [(run.data.params["learning_rate"], run.data.params["dense_units"]) for run in children]
    assert len(set(suggested)) == len(suggested), suggested
    [folder] = Path(spec.storage_path).glob(f"{spec.name}-*")
    assert_nothing_lost(spec.tracking.uri, parents[0].info.run_id, trial_ids=tune_trial_ids(folder),
                        parent_status="FINISHED", model_name=spec.model_name, search_metric=spec.metric,
                        search_mode=spec.mode)


@pytest.mark.parametrize("tune_state, message", [
    (None, "holds no Tune experiment state to resume"),
    # What a SIGKILL while Ray writes the file leaves (benchmarks/scale.py met it at 517 trials): Tune itself would
    # log an error and start the search again from no trials.
    ('{"trial_data": ["{\\"trial_id\\": \\"a1\\"', "is cut short (JSONDecodeError at byte"),
], ids=["gone", "cut-short"])
def test_a_resume_that_cannot_restore_leaves_the_parent_run_as_it_was(tmp_path, tune_state, message):
    """A search folder whose Tune state is gone or cut short: `mritune resume` refuses it (exit 2, one line) and
    neither reopens the interrupted parent run nor closes its trial runs."""
    import json

    from mlflow.tracking import MlflowClient

    spec = tiny_spec(tmp_path)
    client = MlflowClient(spec.tracking.uri)
    experiment_id = client.create_experiment(spec.experiment)
    parent = client.create_run(experiment_id, tags={"mritune.role": "search"})
    client.set_terminated(parent.info.run_id, status="KILLED")
    trial = client.create_run(experiment_id, tags={"mritune.role": "trial",
                                                   "mlflow.parentRunId": parent.info.run_id})
    folder = tmp_path / "ray_results" / "tiny-classifier-2026-01-01_00-00-00"
    folder.mkdir(parents=True)
    (folder / "mritune_search.json").write_text(json.dumps({
        "spec": spec.model_dump(mode="json"), "tracking_uri": spec.tracking.uri, "experiment_id": experiment_id,
        "parent_run_id": parent.info.run_id}))
    if tune_state is not None:
        (folder / "experiment_state-2026-01-01_00-00-00.json").write_text(tune_state)
    mritune = str(Path(sys.executable).with_name("mritune"))
    resumed = subprocess.run([mritune, "resume", str(folder)], cwd=tmp_path, capture_output=True, text=True,
                             env={**os.environ, "MRITUNE_CACHE_DIR": str(tmp_path / "cache")}, timeout=DEADLINE_S)
    assert resumed.returncode == 2, resumed.stderr[-3000:]
    assert message in resumed.stderr and "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
    assert client.get_run(parent.info.run_id).info.status == "KILLED"
    assert client.get_run(trial.info.run_id).info.status == "RUNNING", "nothing was resumed, nothing closed"
