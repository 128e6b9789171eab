"""Where a searcher fits its kernel hyperparameters: inline in ``suggest()``, or on one background thread.

Ray Tune calls ``suggest()`` on its driver loop: while it runs, no result is processed, no trial starts and no
checkpoint is written. A searcher's cost is in two parts: fitting the kernel hyperparameters (ML-II, many
likelihood evaluations; hundreds of ms to seconds on a few hundred points) and the rest (conditioning the GP on the
current observations with those hyperparameters and searching the acquisition: tens of ms on a bounded subset,
``search/fit_subset.py``).

``model_fit="background"`` (the default): ``suggest()`` conditions on every current observation with the last
fitted hyperparameters and returns at once; a refit on the current data starts on a background thread when none
is running, and its result is used from the next suggestion on (Tune's ``Searcher`` contract allows a searcher to
answer from whatever model it has). Below ``INLINE_BELOW`` fitted points, or before any fit exists, the fit is
inline: it costs a few ms there and the hyperparameters move most between fits. A fit that fails on the thread is
raised by the next ``suggest()``, as an inline fit's error would be.

``model_fit="inline"``: every refit happens inside ``suggest()``; the same seed then gives the same suggestions in
a sequential run whatever the timing (benchmarks of search quality use it).

Also here: ``blas_limit``, the BLAS thread cap held while fitting. threadpoolctl's limits are process-wide, so it
is reference-counted: the cap is set by the first holder (foreground or background fit) and restored by the last.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable

from mritune.search.options import MODEL_FITS

logger = logging.getLogger(__name__)

INLINE_BELOW = 30  # fitted points below which every fit is inline (a few ms; hyperparameters still move a lot)


class HyperparameterFits:
    """The latest fitted hyperparameters of one searcher and the fit that may be running for it.

    Args:
        model_fit: ``"background"`` or ``"inline"`` (module docstring).
        blas_threads: BLAS threads while a background fit runs (None: leave as is).

    Raises:
        ValueError: ``model_fit`` is not one of ``MODEL_FITS``.

    Example:
        >>> fits = HyperparameterFits(model_fit="background")
        >>> fits.request(lambda: [0.1, 0.2], inline=True)
        True
        >>> fits.latest()
        [0.1, 0.2]
    """

    def __init__(self, *, model_fit: str = "background", blas_threads: int | None = 1) -> None:
        if model_fit not in MODEL_FITS:
            raise ValueError(f"model_fit must be one of {', '.join(MODEL_FITS)}, got {model_fit!r}")
        self.model_fit = model_fit
        self._blas_threads = blas_threads
        self._lock = threading.Lock()
        self._latest: Any = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.counts = {"inline": 0, "background": 0, "skipped": 0}  # fits run each way; requests while one ran
        self.durations: deque[float] = deque(maxlen=100)  # seconds of the latest fits, inline or not

    def __getstate__(self) -> dict:
        # Tune pickles the searcher with the Tuner: the latest result travels, the lock and a running fit do not.
        state = dict(self.__dict__)
        state.update(_lock=None, _thread=None, _latest=self.peek())
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def background(self) -> bool:
        return self.model_fit == "background"

    def latest(self) -> Any:
        """The last fitted hyperparameters (None before any fit); raises a background fit's error."""
        with self._lock:
            error, self._error = self._error, None
            latest = self._latest
        if error is not None:
            raise error
        return latest

    def peek(self) -> Any:
        """The last fitted hyperparameters without raising a background fit's error (for the saved state)."""
        with self._lock:
            return self._latest

    def set_latest(self, value: Any) -> None:
        """Hyperparameters from elsewhere (a restored state's warm-start hint)."""
        with self._lock:
            self._latest = value

    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def request(self, fit: Callable[[], Any], *, inline: bool = False) -> bool:
        """Run ``fit()`` (it returns the new hyperparameters): now when inline, else on the background thread.

        Returns whether a fit ran or started. In background mode a request while a fit runs is dropped (counted
        as ``skipped``): the running fit holds nearly the same data, and the next request after it ends uses the
        newest. ``fit`` must only read data it was given (copies), never the searcher's live state.
        """
        if inline or not self.background:
            self.wait()  # a background fit still running would overwrite this newer result when it ends
            self.latest()  # ... and its error, if it failed, is raised here
            started = time.perf_counter()
            value = fit()
            with self._lock:
                self._latest = value
            self.durations.append(time.perf_counter() - started)
            self.counts["inline"] += 1
            return True
        if self.running():
            self.counts["skipped"] += 1
            return False
        self.counts["background"] += 1
        self._thread = threading.Thread(target=self._run, args=(fit,), name="mritune-hyperparameter-fit",
                                        daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running background fit; True when none runs any more (tests, benchmarks, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running()

    def _run(self, fit: Callable[[], Any]) -> None:
        started = time.perf_counter()
        try:
            with blas_limit(self._blas_threads):
                value = fit()
        except BaseException as exc:  # handed to the driver thread: the next suggest() raises it
            with self._lock:
                self._error = exc
            return
        with self._lock:
            self._latest = value
        self.durations.append(time.perf_counter() - started)


_blas_state = {"holders": 0, "limiter": None}
_blas_lock = threading.Lock()


class blas_limit:
    """Cap BLAS threads while fitting: on small matrices extra threads cost more than they give.

    Reference-counted across threads (threadpoolctl's limits are process-wide): a foreground and a background fit
    can overlap without one restoring the limit under the other. ``threads`` None: no cap from this holder.
    """

    def __init__(self, threads: int | None) -> None:
        self._threads = threads
        self._held = False

    def __enter__(self):
        if not self._threads:
            return self
        with _blas_lock:
            if _blas_state["holders"] == 0:
                from threadpoolctl import threadpool_limits

                _blas_state["limiter"] = threadpool_limits(limits=self._threads, user_api="blas")
            _blas_state["holders"] += 1
            self._held = True
        return self

    def __exit__(self, *exc) -> None:
        if not self._held:
            return
        with _blas_lock:
            _blas_state["holders"] -= 1
            if _blas_state["holders"] == 0:
                _blas_state["limiter"].restore_original_limits()
                _blas_state["limiter"] = None
        self._held = False
