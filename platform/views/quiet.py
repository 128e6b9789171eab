"""The quiet console: what `mritune search`, `resume`, `quickstart` and `train` leave out unless ``--verbose``.

A newcomer on a machine without a GPU should not read ``E0000 … failed call to cuInit`` as an error, nor wade
through TensorFlow's, Ray's and MLflow's start-up chatter. Three layers, each as narrow as it can be:

1. Environment (``QUIET_ENV``), for the driver and, through ``console.worker_runtime_env``, every Ray worker:
   TensorFlow's C++ INFO/WARNING lines off (``TF_CPP_MIN_LOG_LEVEL=2``; its errors stay), gRPC at ERROR, MLflow's
   loggers at WARNING and its "Downloading artifacts" progress bars off, Ray Tune's experiment box off.
2. Python loggers (``QUIET_LOGGERS``) at WARNING in the driver: Ray's, Tune's and MLflow's INFO lines go,
   their warnings and errors stay.
3. ``NOISE``: the few lines no setting reaches, because TensorFlow's libraries print them through absl before
   anything can configure it (``I0000 … oneDNN custom operations are on``, ``cudart_stub … Could not find cuda
   drivers``, the CPU-instructions note, and on a machine without an NVIDIA driver the CUDA probe's ``failed call
   to cuInit``), Grappler's ``remapper failed … Mutation::Apply error`` (a skipped fusion, not a failure) and
   MLflow's registration
   receipts, which mritune's own ``Registered:`` line replaces. The driver's stdout and stderr pass through a
   line filter (file descriptors 1 and 2, so the driver's own C++ output and the trial workers' lines, which Ray
   prints in the driver as ``(classifier_trainable pid=…) …``, are both seen) that drops exactly these lines.
   Every other line, any other error or warning included, goes through unchanged and in order.

``--verbose`` (``quiet_console(verbose=True)``) changes nothing: everything prints as Ray, TensorFlow and MLflow
print it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ INFO and WARNING lines; its errors stay
    "GRPC_VERBOSITY": "ERROR",
    "MLFLOW_LOGGING_LEVEL": "WARNING",  # read when mlflow is imported (driver and workers)
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # "Downloading artifacts: 100%|…" at every model load
    # "🏃 View run … at: <url>" and "🧪 View experiment at: <url>" for every run ended on an http(s) tracking server:
    # two lines per trial (2,000 in a 1,000-trial search); the search prints one link to all its runs.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "RAY_AIR_NEW_OUTPUT": "0",  # Tune's legacy reporter, silent at verbose=0 (the new one prints its box anyway)
}
QUIET_LOGGERS = ("ray", "ray.tune", "ray.train", "mlflow", "tensorflow", "absl")
# Loggers whose warnings on the quiet console are about files a search does not write: Tuner.restore reads every
# trial's result.json/progress.csv, which Tune's result loggers (off: every metric is in MLflow) never wrote, and
# warns once per trial (504 lines on resuming a search killed at 500 trials).
QUIET_ERRORS_ONLY = ("ray.tune.analysis.experiment_analysis",)

# (pattern, why it is noise); searched in a line without its colour codes, anywhere unless anchored, so Ray's
# "(trainable pid=…)" prefix and its "[repeated 2x across cluster]" suffix do not matter.
NOISE: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), why) for pattern, why in (
    (r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
     "absl's note before TensorFlow's start-up lines"),
    (r"\] oneDNN custom operations are on\.", "TensorFlow start-up (INFO, printed before its log level applies)"),
    (r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
     "TensorFlow start-up on a machine without CUDA (INFO)"),
    (r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized", "TensorFlow start-up (INFO)"),
    (r"^(\(\S+ pid=\d+\)\s*)?To enable the following instructions: .*rebuild TensorFlow with the appropriate "
     r"compiler flags", "the second line of the CPU-instructions note"),
    (r"meta_optimizer\.cc:\d+\] remapper failed: INVALID_ARGUMENT: Mutation::Apply error: fanout '\S+' exist for "
     r"missing node", "TensorFlow's graph optimizer skipping one fusion in the DCGAN's gradient graph (the graph "
     "runs unfused; logged at ERROR though nothing failed)"),
    (r"^Successfully registered model '", "MLflow's receipt; mritune prints its own Registered: line"),
    (r"^Created version '\d+' of model '", "MLflow's receipt; mritune prints its own Registered: line"),
))
# Only on a machine without an NVIDIA driver: there the CUDA probe's failure says nothing; where a driver is
# installed the same line is a real fault (a broken driver, a GPU in a bad state) and shows.
NOISE_WITHOUT_NVIDIA_DRIVER = (re.compile(r"cuda_platform\.cc:\d+\] failed call to cuInit"),
                               "TensorFlow probing for a GPU on a machine that has no NVIDIA driver")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def is_noise(line: str, *, nvidia_driver: bool | None = None) -> bool:
    """Whether ``line`` (one line, without its newline) is one of ``NOISE``'s; ``nvidia_driver``: whether this
    machine has one (None: look, ``has_nvidia_driver``)."""
    plain = _ANSI.sub("", line)
    rules = NOISE if (has_nvidia_driver() if nvidia_driver is None else nvidia_driver) \
        else (*NOISE, NOISE_WITHOUT_NVIDIA_DRIVER)
    return any(pattern.search(plain) for pattern, _ in rules)


def has_nvidia_driver() -> bool:
    """Whether an NVIDIA kernel driver is loaded here (what CUDA's cuInit needs)."""
    return os.path.exists("/proc/driver/nvidia/version")


@contextlib.contextmanager
def quiet_console(*, verbose: bool) -> Iterator[None]:
    """The quiet console for the duration of a command; ``verbose=True``: nothing changes.

    The environment and logger levels it sets stay for the rest of the process (the trial workers and later
    imports read them); the line filter is removed on exit, after the lines already written have gone through.

    Example:
        >>> with quiet_console(verbose=False):  # doctest: +SKIP
        ...     run_search(spec)
    """
    if verbose:
        yield
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)  # a value the user set wins
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in QUIET_ERRORS_ONLY:
        logging.getLogger(name).setLevel(logging.ERROR)
    filters = []
    try:
        for stream in (sys.stdout, sys.stderr):
            filters.append(_LineFilter(stream))
        yield
    finally:
        _flush_ray_logs()
        for line_filter in reversed(filters):
            line_filter.close()


def _flush_ray_logs() -> None:
    """Shut an embedded Ray down while the filter is still in place: Ray prints its workers' lines (and its
    "[repeated Nx across cluster]" summaries) from a driver thread, late, and at shutdown; after the filter is gone
    they would reach the console unfiltered."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


class _LineFilter:
    """Route one standard stream's file descriptor through a pipe; a thread copies every line but ``NOISE``'s."""

    _DRAIN_S = 5.0  # at close, how long to wait for lines still in the pipe (a child may keep its write end)

    def __init__(self, stream) -> None:
        stream.flush()
        self._stream = stream
        self._nvidia_driver = has_nvidia_driver()
        self._fd = stream.fileno()
        self._target = os.dup(self._fd)  # where the lines go: the terminal or file the stream was
        read_end, write_end = os.pipe()
        os.dup2(write_end, self._fd)
        os.close(write_end)
        self._read_end = read_end
        self._thread = threading.Thread(target=self._copy, name=f"quiet-fd{self._fd}", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._read_end, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = [line + b"\n" for line in lines
                    if not is_noise(line.decode("utf-8", "replace"), nvidia_driver=self._nvidia_driver)]
            if kept:
                self._write(b"".join(kept))
        if pending and not is_noise(pending.decode("utf-8", "replace"), nvidia_driver=self._nvidia_driver):
            self._write(pending)

    def _write(self, data: bytes) -> None:
        while data:
            data = data[os.write(self._target, data):]

    def close(self) -> None:
        self._stream.flush()
        os.dup2(self._target, self._fd)  # the stream writes straight to its target again; the pipe's write end
        # is now held only by child processes that inherited it, if any: the copy ends when they close it
        self._thread.join(timeout=self._DRAIN_S)
        if self._thread.is_alive():
            return  # a child still holds the pipe: the thread keeps copying its lines until it closes it
        os.close(self._read_end)
        os.close(self._target)
