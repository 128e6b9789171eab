"""Driver-side Ray Tune callback that closes trial runs the trial process could not close itself.

A trial stopped by ASHA is ended by Ray without returning from the training function, so its MLflow run would
stay RUNNING. The driver sees every trial's end and sets the final status: KILLED with ``stopped_by=asha`` for a
scheduler stop before the last epoch, FAILED for an errored trial.
"""

from __future__ import annotations

from ray.tune import Callback

from mritune.platform.tracking import find_trial_run


class TrialRunCloser(Callback):
    def __init__(self, *, tracking_uri: str, experiment_id: str, parent_run_id: str, epochs: int, scheduler: str):
        self._tracking_uri = tracking_uri
        self._experiment_id = experiment_id
        self._parent_run_id = parent_run_id
        self._epochs = epochs
        self._scheduler = scheduler

    def on_trial_complete(self, iteration, trials, trial, **info):
        last_epoch = int((trial.last_result or {}).get("training_iteration", 0))
        stopped_early = last_epoch < self._epochs
        self._close(trial.trial_id, "KILLED" if stopped_early else "FINISHED", stopped_early)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._close(trial.trial_id, "FAILED", False)

    def _close(self, trial_id: str, status: str, stopped_early: bool) -> None:
        """The driver decides the final status: inside the trial, a scheduler stop at the last epoch
        (ASHA stops every trial that reaches max_t) looks the same as one before it."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self._tracking_uri)
        run = find_trial_run(client, self._experiment_id, self._parent_run_id, trial_id)
        if run is None:
            return  # the trial failed before its observer opened a run
        if stopped_early and self._scheduler == "asha":
            client.set_tag(run.info.run_id, "stopped_by", "asha")
        if run.info.status != status:
            client.set_terminated(run.info.run_id, status=status)
