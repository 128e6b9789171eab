"""Driver-side Ray Tune callbacks on the trials' MLflow runs: closing runs the trial process could not close itself,
and naming each run readably.

A trial stopped by ASHA is ended by Ray without returning from the training function, so its MLflow run would
stay RUNNING. The driver sees every trial's end and sets the final status: KILLED with ``stopped_by=asha`` for a
scheduler stop before the last epoch, FAILED for an errored trial (``reporting.final_trial_status``).
"""

from __future__ import annotations

from ray.tune import Callback

from mritune.platform.tracking.tags import STOPPED_BY_ASHA, STOPPED_BY_TAG, TRIAL_NUMBER_TAG
from mritune.platform.tracking.trial_runs import find_trial_run
from mritune.trainables.reporting import ERRORED, STOPPED, final_trial_status



class TrialRunCloser(Callback):
    def __init__(self, *, tracking_uri: str, experiment_id: str, parent_run_id: str, epochs: int, scheduler: str):
        self._tracking_uri = tracking_uri
        self._experiment_id = experiment_id
        self._parent_run_id = parent_run_id
        self._epochs = epochs
        self._scheduler = scheduler

    def on_trial_complete(self, iteration, trials, trial, **info):
        # Here a return and a scheduler stop look alike; a return has run every epoch, which the rule counts FINISHED.
        self._close(trial, STOPPED)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._close(trial, ERRORED)

    def _close(self, trial, ending: str) -> None:
        """The driver writes the final status by the trial process's own rule (``final_trial_status``): inside
        the trial, Ray may kill the process before its observer ends the run."""
        from mlflow.tracking import MlflowClient

        last_epoch = int((trial.last_result or {}).get("training_iteration", 0))
        status = final_trial_status(ending, last_epoch=last_epoch, max_epochs=self._epochs)
        client = MlflowClient(self._tracking_uri)
        run = find_trial_run(client, self._experiment_id, self._parent_run_id, trial.trial_id)
        if run is None:
            return  # the trial failed before its observer opened a run
        if status == "KILLED" and self._scheduler == "asha":
            client.set_tag(run.info.run_id, STOPPED_BY_TAG, STOPPED_BY_ASHA)
        if run.info.status != status:
            client.set_terminated(run.info.run_id, status=status)


class TrialRunNamer(Callback):
    """Names each trial's run ``#<n> key=value ...`` (n: the order Tune started the trials) at its first result.

    The trial process opens its run before its first epoch reaches Tune (tracking.MlflowTrialObserver), so the run
    exists here; only the driver knows the trial's number. The number is also kept as ``mritune.trial_number``.
    """

    def __init__(self, *, tracking_uri: str, experiment_id: str, parent_run_id: str, searched: list[str]):
        self._tracking_uri = tracking_uri
        self._experiment_id = experiment_id
        self._parent_run_id = parent_run_id
        self._searched = searched
        self._numbers: dict[str, int] = {}
        self._named: set[str] = set()

    def on_trial_start(self, iteration, trials, trial, **info):
        self._numbers.setdefault(trial.trial_id, len(self._numbers) + 1)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if trial.trial_id in self._named:
            return
        from mlflow.tracking import MlflowClient

        self._named.add(trial.trial_id)
        client = MlflowClient(self._tracking_uri)
        run = find_trial_run(client, self._experiment_id, self._parent_run_id, trial.trial_id)
        if run is None:
            return
        number = self._numbers.setdefault(trial.trial_id, len(self._numbers) + 1)
        client.set_tag(run.info.run_id, "mlflow.runName", trial_run_name(number, trial.config, self._searched))
        client.set_tag(run.info.run_id, TRIAL_NUMBER_TAG, str(number))


def trial_run_name(number: int, config: dict, searched: list[str]) -> str:
    """``#3 learning_rate=0.00378 dense_units=32``: the trial's number and its searched values, short."""
    return " ".join(part for part in (f"#{number}", searched_values(config, searched)) if part)[:250]


def searched_values(config: dict, searched: list[str]) -> str:
    """``learning_rate=0.00378 dense_units=32``: the searched values, as run names and progress lines show them."""
    from mritune.platform.tracking.display import short_value

    return " ".join(f"{key}={short_value(config.get(key), digits=3)}" for key in searched)
