"""What a search prints while it runs: one line per finished trial and a periodic summary, instead of Ray's tables.

Quiet (the default): Ray's own progress output is off (``RunConfig(verbose=0)``), the trial workers start with
TensorFlow's C++ log at ERROR (``TF_CPP_MIN_LOG_LEVEL=2``: its start-up INFO/WARNING lines go, errors stay) and
their TensorFlow, Ray Train and MLflow Python loggers at WARNING; :class:`ConsoleProgress` prints the trials.
``--verbose`` (``verbose=True``) keeps everything as Ray and TensorFlow print it.

At a thousand trials a line per trial is a thousand lines: the first ``TRIAL_LINES`` trials that end get a line
each; after them only a trial that sets a new best, or one of the first ``FAILED_LINES`` failures, does, and the
summary every 30 s counts the others (one line says so when the folding starts).
"""

from __future__ import annotations

import json
import logging
import os
import time

import typer
from ray.tune import Callback

from mritune.platform.views.quiet import QUIET_ENV
from mritune.platform.tracking.display import floor_text
from mritune.platform.tracking.run_callbacks import searched_values
from mritune.platform.tracking.trial_runs import is_finite_number

# Python loggers that print start-up or per-checkpoint INFO lines in each trial process.
_QUIET_LOGGERS = ("tensorflow", "absl", "ray.train", "ray.tune", "mlflow")
SUMMARY_EVERY_S = 30.0
TRIAL_LINES = 50  # trials that get a line each, whatever they did
FAILED_LINES = 10  # failures that get a line each, whenever they happen

logger = logging.getLogger(__name__)


def worker_runtime_env(*, verbose: bool) -> dict | None:
    """``ray.init``'s runtime_env: quiet trial workers, or None (Ray's defaults) when verbose."""
    if verbose:
        return None
    env_vars = dict(QUIET_ENV)  # the driver's quiet environment (platform/views/quiet.py)
    runtime_env = {"env_vars": env_vars, "worker_process_setup_hook": f"{__name__}.quiet_worker_logs"}
    # Inside a Ray Job (`mritune submit`) Ray merges this with the job's runtime env and refuses any key both set;
    # the job's own values win.
    job_env = _job_runtime_env()
    for key in job_env.get("env_vars") or {}:
        env_vars.pop(key, None)
    if "worker_process_setup_hook" in job_env:
        del runtime_env["worker_process_setup_hook"]
    return runtime_env


def _job_runtime_env() -> dict:
    """The runtime env of the Ray Job this driver runs in (Ray passes it in the environment), else {}."""
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR  # as ray.init reads it
    from ray.job_config import JobConfig

    injected = os.environ.get(RAY_JOB_CONFIG_JSON_ENV_VAR)
    if not injected:
        return {}
    return dict(JobConfig.from_json(json.loads(injected)).runtime_env or {})


def quiet_worker_logs() -> None:
    """Run by Ray in every worker process before it takes work: INFO chatter off, warnings and errors kept."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class ConsoleProgress(Callback):
    """Driver-side Tune callback: a line per finished, stopped or failed trial, and a summary every 30 s.

    ``floor_metric`` (the task's ``floor_of(metric)``, e.g. ``swd_floor``): a score is shown beside its real-vs-real
    floor, ``swd 41.2000, floor 18.3``, from the same epoch's result.
    """

    def __init__(self, *, metric: str, mode: str, epochs: int, searched: list[str], echo=typer.echo,
                 summary_every_s: float = SUMMARY_EVERY_S, trial_lines: int = TRIAL_LINES,
                 failed_lines: int = FAILED_LINES, clock=time.monotonic, floor_metric: str | None = None,
                 population: bool = False):
        self._metric, self._mode, self._epochs, self._searched = metric, mode, epochs, searched
        self._floor_metric = floor_metric
        # pbt/pb2 stop no trial early; they pause trials (to copy another, or to share the CPUs) and restart them.
        self._population = population
        self._echo = echo
        self._summary_every_s = summary_every_s
        self._trial_lines, self._failed_lines = trial_lines, failed_lines
        self._clock = clock
        self._started = clock()
        self._last_summary = self._started
        self._counts = {"done": 0, "stopped": 0, "failed": 0}
        self._failure_lines = 0  # failures that got a line
        self._best: float | None = None
        self._best_trial: str | None = None
        self._best_values: dict[str, float] = {}  # trial id -> its best metric so far
        self._floors: dict[str, float] = {}  # trial id -> the floor reported with that best value

    def setup(self, **info):
        # Tune's result files are off by design (trial_speed.TUNE_ENV), so building the ResultGrid warns, ten lines
        # per search, that it found none; the metrics are in MLflow and the ranking reads the checkpoints.
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        value = result.get(self._metric)
        if is_finite_number(value):
            previous = self._best_values.get(trial.trial_id)
            self._best_values[trial.trial_id] = value if previous is None else self._pick(previous, value)
            if self._floor_metric and self._best_values[trial.trial_id] == value:
                self._floors[trial.trial_id] = result.get(self._floor_metric)

    def on_trial_complete(self, iteration, trials, trial, **info):
        epochs = int((trial.last_result or {}).get("training_iteration", 0))
        stopped = epochs < self._epochs
        self._counts["stopped" if stopped else "done"] += 1
        what = (f"stopped {'' if self._population else 'by ASHA '}at epoch {epochs}" if stopped
                else f"completed {epochs} epochs")
        self._trial_ended(trial, what, failed=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._counts["failed"] += 1
        error = getattr(trial, "error_file", None) or getattr(trial, "path", "")
        self._trial_ended(trial, f"FAILED (error in {error})", failed=True)

    def on_step_end(self, iteration, trials, **info):
        now = self._clock()
        if now - self._last_summary >= self._summary_every_s:
            self._last_summary = now
            self._echo(self.summary(trials))

    def on_experiment_end(self, trials, **info):
        self._echo(self.summary(trials))

    def summary(self, trials) -> str:
        running = sum(1 for trial in trials if trial.status == "RUNNING")
        best = "-" if self._best is None else f"{self._best:.4f}{floor_text(self._floors.get(self._best_trial))}"
        by = "" if self._best_trial is None else f" (trial {self._best_trial})"
        if self._population:
            paused = sum(1 for trial in trials if trial.status == "PAUSED")
            middle = f"{paused} paused"
        else:
            middle = f"{self._counts['stopped']} stopped by ASHA"
        return (f"[{self._elapsed()}] {self._counts['done']} done, {running} running, {middle}, "
                f"{self._counts['failed']} failed; best {self._metric} {best}{by}")

    def _trial_ended(self, trial, what: str, *, failed: bool) -> None:
        value = self._best_values.get(trial.trial_id)
        new_best = value is not None and (self._best is None or (value != self._best
                                                                  and self._pick(self._best, value) == value))
        if new_best:
            self._best, self._best_trial = value, trial.trial_id
        ended = sum(self._counts.values())
        if ended <= self._trial_lines or new_best or (failed and self._failure_lines < self._failed_lines):
            self._failure_lines += int(failed)
            params = searched_values(trial.config, self._searched)
            score = "-" if value is None else f"{value:.4f}{floor_text(self._floors.get(trial.trial_id))}"
            mark = " (new best)" if new_best and ended > self._trial_lines else ""
            self._echo(f"[{self._elapsed()}] trial {trial.trial_id} {what}: {self._metric} {score}{mark} | {params}")
        if ended == self._trial_lines:
            self._echo(f"[{self._elapsed()}] {ended} trials have ended; from here on a trial gets a line only when "
                       f"it sets a new best or is one of the first {self._failed_lines} failures, and the summary "
                       f"every {self._summary_every_s:.0f} s counts the rest")

    def _pick(self, a: float, b: float) -> float:
        return max(a, b) if self._mode == "max" else min(a, b)

    def _elapsed(self) -> str:
        seconds = int(self._clock() - self._started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"
