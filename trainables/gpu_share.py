"""Several trials on one GPU: each trial's TensorFlow memory capped to its share of the device.

Ray schedules ``resources.gpu: 0.25`` as four trials on one GPU, but only as bookkeeping: every trial process sees
the whole device, and TensorFlow with memory growth keeps whatever it once allocated, so one trial's peak can
starve the other three (an out-of-memory error in someone else's trial). Here a trial with a fractional share gets
one logical GPU whose memory limit is its share of the device's memory, less ``CONTEXT_RESERVE_MB`` for the
memory every CUDA process takes outside TensorFlow's allocator (its context, cuDNN and cuBLAS workspaces); a trial
with a whole GPU (or more) keeps memory growth.

A reused Ray actor (``reuse_actors``; Tune only reuses actors between trials of equal resources) runs its next
trial under the same limit: TensorFlow fixes a device's configuration when it first uses it, and its allocator keeps
the memory it reserved for the process's life, so what one trial leaves behind stays inside the same cap instead of
growing past it. ``benchmarks/gpu_check.py`` measures both on a real GPU (it has not run on one yet).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

logger = logging.getLogger(__name__)

# MB per process outside TensorFlow's allocator (CUDA context, cuDNN/cuBLAS handles): an estimate for current
# drivers until benchmarks/gpu_check.py has measured it on a GPU.
CONTEXT_RESERVE_MB = 600


def gpu_memory_limit_mb(share: float | None, device_mb: int) -> int | None:
    """The TensorFlow memory limit (MB) of a trial holding ``share`` of a device of ``device_mb`` MB.

    None when the trial has a whole device or more (``share >= 1``), or no GPU share: memory growth then.

    Raises:
        ValueError: The share leaves no memory once the CUDA context is reserved.

    Example:
        >>> gpu_memory_limit_mb(0.25, 81559)  # a quarter of an 80 GB H100
        19789
        >>> gpu_memory_limit_mb(1, 81559) is None
        True
    """
    if not share or share >= 1:
        return None
    limit = int(share * device_mb) - CONTEXT_RESERVE_MB
    if limit < 256:
        raise ValueError(f"resources.gpu {share} of a {device_mb} MB GPU leaves {limit} MB for TensorFlow after "
                         f"{CONTEXT_RESERVE_MB} MB for the CUDA context; ask for a larger share")
    return limit


def visible_device_memory_mb() -> list[int] | None:
    """Total memory (MB) of each GPU this process sees, in CUDA's order (``CUDA_VISIBLE_DEVICES``, set by Ray);
    None when ``nvidia-smi`` cannot tell."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = [d.strip() for d in visible.split(",") if d.strip()] if visible else None
    command = [smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"]
    if devices:
        command += ["-i", ",".join(devices)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        logger.warning("nvidia-smi could not report the GPUs' memory (%s)", exc)
        return None
    return [int(float(line)) for line in out.split() if line.strip()]


def configure_tensorflow_gpus(share: float | None) -> tuple[int, int | None]:
    """Cap (fractional share) or grow (whole device) TensorFlow's memory on every visible GPU.

    Returns the number of GPUs and the limit applied (MB; None: memory growth). Must run before TensorFlow first
    uses a GPU; in a reused actor the same limit is already in place and is kept.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return 0, None
    limit = None
    if share and share < 1:
        totals = visible_device_memory_mb()
        if totals:
            limit = gpu_memory_limit_mb(share, min(totals))
        else:
            logger.warning("resources.gpu is %s but the GPUs' memory is unknown (no nvidia-smi): TensorFlow's memory "
                           "is not capped, only grown on demand; trials sharing a GPU can starve each other", share)
    for gpu in gpus:
        if limit is None:
            _grow(tf, gpu)
        else:
            _cap(tf, gpu, limit)
    return len(gpus), limit


def _grow(tf, gpu) -> None:
    if tf.config.get_logical_device_configuration(gpu):
        return  # a limit is already in place (an earlier trial of this process): growth cannot be set any more
    try:
        tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError as exc:  # the GPU was already initialised; growth cannot change any more
        logger.warning("memory growth not changed on %s: %s", gpu.name, exc)


def _cap(tf, gpu, limit: int) -> None:
    current = tf.config.get_logical_device_configuration(gpu) or []
    if len(current) == 1 and current[0].memory_limit == limit:
        return  # a reused actor: its earlier trial set the same cap
    try:
        tf.config.set_logical_device_configuration(gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)])
    except RuntimeError as exc:  # TensorFlow already initialised this GPU in this process
        logger.warning("GPU memory limit of %d MB not applied on %s (TensorFlow already uses it: %s)", limit,
                       gpu.name, exc)
