"""Process-wide runtime settings for one training: TensorFlow threads, GPU memory growth, mixed precision.

Called once at the start of a trial (in the trial's own worker process), before any model is built. Ray gives a
trial a CPU share and possibly a fraction of a GPU; TensorFlow would otherwise use every core of the machine and
grab all GPU memory, starving the other trials that share the node or the GPU. A fraction of a GPU caps the
trial's TensorFlow memory to its share of the device (``gpu_share.py``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# "0" selects the platform's slower pre-issue-11 paths (fresh actor per trial, synchronous MLflow logging, Tune's
# file loggers, per-call model.predict): only so benchmarks/platform_overhead.py can compare both from one code base.
SPEEDUPS_ENV = "MRITUNE_TRIAL_SPEEDUPS"
_speedups = {"enabled": True}  # this process's choice; set per trial by configure_runtime


def speedups_from_env(environ=None) -> bool:
    """The driver's choice (read where a search is built; trial processes get it through ``configure_runtime``)."""
    value = (os.environ if environ is None else environ).get(SPEEDUPS_ENV, "1")
    return value.strip().lower() not in ("0", "false", "no", "off")


def speedups_enabled() -> bool:
    return _speedups["enabled"]


_FROZEN_AT_FIRST_TRIAL = {"done": False}


def free_keras_state() -> None:
    """Drop the previous trial's models, graphs and traced functions (a reused Ray actor runs many trials).

    Python's collector (``free_memory``) walks every tracked object, and a trial process holds millions from
    TensorFlow, Ray and MLflow alone: a full collection took 0.3-1.4 s of CPU per trial start. So the first call in
    a process, when no trial's objects exist yet, collects nothing and freezes what is there (``gc.freeze``: the
    imported libraries), and the later calls collect only what was created since (0.02-0.05 s).
    """
    import gc

    import keras

    if not _FROZEN_AT_FIRST_TRIAL["done"]:
        keras.backend.clear_session(free_memory=False)
        gc.freeze()
        _FROZEN_AT_FIRST_TRIAL["done"] = True
        return
    keras.backend.clear_session(free_memory=True)  # free_memory: also runs Python's garbage collector


@dataclass(frozen=True)
class RuntimeSettings:
    backend: str
    threads: int | None  # intra-op threads asked for (None: TensorFlow's default)
    threads_applied: bool  # False when TensorFlow was already initialised with other values
    gpus: int  # GPUs visible to this process
    mixed_precision: bool
    speedups: bool = True
    gpu_memory_limit_mb: int | None = None  # TensorFlow's cap per GPU for a fractional share (None: growth)


def threads_for_cpus(cpus: float | None) -> int | None:
    """Threads for a trial's CPU share: at least one, rounded up (a 0.5-CPU trial still needs a thread)."""
    if cpus is None or cpus <= 0:
        return None
    return max(1, math.ceil(cpus))


def configure_runtime(
    *, cpus: float | None = None, gpus: float | None = None, mixed_precision: bool | None = None,
    speedups: bool = True,
) -> RuntimeSettings:
    """Set threads to the trial's CPU share, the GPUs' memory (a fractional ``gpus`` share: capped to it; else
    growth) and (on a GPU, unless disabled) mixed precision.

    ``mixed_precision=None`` means "on when a GPU is present"; on CPU it is always off (float16 is slow there and
    would change results). ``speedups`` False selects the old inference and optimizer paths (``SPEEDUPS_ENV``).
    """
    import keras

    _speedups["enabled"] = speedups

    backend = keras.backend.backend()
    threads = threads_for_cpus(cpus)
    applied, visible, limit = True, 0, None
    if backend == "tensorflow":
        from mritune.trainables.gpu_share import configure_tensorflow_gpus

        applied = _set_tensorflow_threads(threads)
        visible, limit = configure_tensorflow_gpus(gpus)
    use_mixed = bool(visible) and mixed_precision is not False
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")
    return RuntimeSettings(
        backend=backend, threads=threads, threads_applied=applied, gpus=visible, mixed_precision=use_mixed,
        speedups=speedups, gpu_memory_limit_mb=limit,
    )


def _set_tensorflow_threads(threads: int | None) -> bool:
    import tensorflow as tf

    if threads is None:
        return True
    threading = tf.config.threading
    if threading.get_intra_op_parallelism_threads() == threads and threading.get_inter_op_parallelism_threads() == 1:
        return True
    try:
        threading.set_intra_op_parallelism_threads(threads)
        # One inter-op thread: a trial's small graphs gain little from running ops side by side.
        threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as exc:  # TensorFlow already initialised in this process (a test, a notebook)
        logger.warning("TensorFlow threads left as they were (%s); wanted %d", exc, threads)
        return False
    return True
