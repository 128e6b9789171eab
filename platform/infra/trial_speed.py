"""How a search keeps its trial slots training: one decision, read on the driver when the search is built.

On (the default): trial actors are reused (each worker process imports TensorFlow once and runs trial after
trial), MLflow logging runs on a background thread of each trial, inference uses one fixed-shape compiled
function, and Tune's own CSV/JSON/TensorBoard result loggers are off (every metric is in MLflow; the ranking
reads the checkpoints' metrics). ``MRITUNE_TRIAL_SPEEDUPS=0`` selects the old behaviour, so
benchmarks/platform_overhead.py can compare both from the same code.

Tried and left out: preloading TensorFlow in Ray's worker processes (``RAY_preload_python_modules``). On this
2-core machine every new worker then imports TensorFlow before taking work, several at once, and the quick
start's first epoch ended later, not earlier (10.4 s after the search run opened, against 7.0 s without).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from mritune.trainables.runtime import speedups_from_env

# Driver-side Tune settings, read by Tuner.fit: set only while it runs, then restored (tests and other searches in
# the same process see the environment they had).
# TUNE_GLOBAL_CHECKPOINT_S: the experiment-state snapshot (trials and searcher state, a few small files) at most
# once a second instead of Tune's adaptive 10 s or more. A reused actor starts its next trial at once; a driver
# killed before the snapshot that lists that trial would resume without it, leaving its MLflow run an orphan.
# TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S=0: that snapshot every second is intended, so Ray's
# three-line warning about frequent snapshots (dozens of times per quick start) is off.
TUNE_ENV = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1",
            "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}


@dataclass(frozen=True, kw_only=True)
class TrialSpeed:
    reuse_actors: bool
    background_logging: bool
    fast_inference: bool
    tune_env: dict[str, str]

    @classmethod
    def from_env(cls) -> "TrialSpeed":
        on = speedups_from_env()
        return cls(reuse_actors=on, background_logging=on, fast_inference=on, tune_env=dict(TUNE_ENV) if on else {})


@contextlib.contextmanager
def tune_environment(speed: TrialSpeed) -> Iterator[None]:
    """``speed.tune_env`` in os.environ for the block (a value the user set is kept), then as before."""
    with _environment(speed.tune_env):
        yield


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

