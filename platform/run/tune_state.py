"""A whole copy of Ray Tune's experiment state, so that a driver killed mid-write can still be resumed.

Ray Tune writes ``experiment_state-<session>.json`` on the driver and copies it into the search folder in place
(no temporary file and rename). A driver killed while that copy runs leaves the file cut short; ``Tuner.restore``
then logs an error and starts the search again from no trials. ``benchmarks/scale.py`` met it in 2 of the 3
SIGKILLs at ~500 trials (a state of 2-12 MB, rewritten whole at every save). :class:`TuneStateKeeper` copies the
file aside whenever it reads as whole JSON (``<name>.whole``, written to a temporary name and renamed, so the
copy itself is never cut short), and with it the search generator's and the searcher's state files of the same
session (Tune writes all three at one save);
:func:`restore_whole_tune_state` puts the copies back when a resume finds the newest state cut short. The trials
Tune started after the copy are the ones it forgets: the resume closes their runs and tags them orphaned, and the
searcher, put back to the same moment, suggests their places again (with a newer searcher state, as first in a
1,000-trial run, the search ended 5 trials short).

Local search folders only: an object store (S3) never shows a partly written object.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from ray.tune import Callback

from mritune.platform.infra.storage import parse_location
from mritune.platform.spec.search_folder import newest_tune_state

WHOLE_SUFFIX = ".whole"
# The files Tune's save writes beside experiment_state-<session>.json (SearchGenerator.save_to_dir and the
# searcher's Searcher.save_to_dir; under pbt/pb2 BasicVariantGenerator.save_to_dir); restored together, the
# searcher agrees with the trials the state lists.
COMPANIONS = ("search_gen_state-{}.json", "searcher-state-{}.pkl", "basic-variant-state-{}.json")
CUT_SHORT_SUFFIX = ".cut-short"
KEEP_EVERY_S = 15.0

logger = logging.getLogger(__name__)


def _newest_tune_state(folder: Path) -> Path | None:
    newest = newest_tune_state(parse_location(str(folder)))
    return None if newest is None else Path(newest.value)


def _whole_bytes(path: Path) -> bytes | None:
    """The file's bytes if they read as whole JSON; None if it is cut short (or gone)."""
    try:
        data = path.read_bytes()
        json.loads(data)
    except (OSError, ValueError):  # cut short (JSONDecodeError, UnicodeDecodeError) or gone
        return None
    return data


def reads_whole(path: Path) -> bool:
    return _whole_bytes(path) is not None


class TuneStateKeeper(Callback):
    """Driver-side Tune callback: every ``every_s`` seconds, a whole copy of the newest experiment state."""

    def __init__(self, *, folder: Path, every_s: float = KEEP_EVERY_S, clock=time.monotonic):
        self._folder, self._every_s, self._clock = Path(folder), every_s, clock
        self._last = None

    def on_step_end(self, iteration, trials, **info):
        now = self._clock()
        if self._last is not None and now - self._last < self._every_s:
            return
        self._last = now
        self.keep()

    def on_experiment_end(self, trials, **info):
        self.keep()

    def keep(self) -> bool:
        """Copy the newest state if it reads whole (Ray may be writing it now: then the last copy stays)."""
        state = _newest_tune_state(self._folder)
        if state is None:
            return False
        data = _whole_bytes(state)
        if data is None:
            logger.debug("%s is being written; the last whole copy stays", state)
            return False
        for companion in _companions(state):
            if companion.exists():
                _write_whole_copy(companion, companion.read_bytes())
        _write_whole_copy(state, data)
        return True


def _companions(state: Path) -> list[Path]:
    session = state.name.removeprefix("experiment_state-").removesuffix(".json")
    return [state.with_name(template.format(session)) for template in COMPANIONS]


def _write_whole_copy(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}{WHOLE_SUFFIX}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path.with_name(path.name + WHOLE_SUFFIX))


def restore_whole_tune_state(folder: Path) -> Path | None:
    """If the newest state is cut short and a whole copy of it exists, put the copy in its place (the cut file
    kept beside it as ``<name>.cut-short``) and return the restored file; else None, nothing changed."""
    state = _newest_tune_state(folder)
    if state is None or reads_whole(state):
        return None
    whole = state.with_name(state.name + WHOLE_SUFFIX)
    if not reads_whole(whole):
        return None
    os.replace(state, state.with_name(state.name + CUT_SHORT_SUFFIX))
    os.replace(whole, state)
    for companion in _companions(state):
        kept = companion.with_name(companion.name + WHOLE_SUFFIX)
        if kept.exists():
            os.replace(kept, companion)
    logger.warning("%s was cut short by the interruption; resuming from its last whole copy (the trials started "
                   "after it are closed as orphaned)", state)
    return state
