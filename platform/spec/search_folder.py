"""A search's folder and its state file: the one place runner (writes it, resumes from it) and the report (reads
it) learn where a search is tracked.

``mritune_search.json`` in the experiment folder holds the spec (as parsed), the tracking URI, the experiment id
and the parent run id (``runner`` writes it when the search starts).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mritune.trainables.errors import MissingInputError, UserInputError

if TYPE_CHECKING:
    from mritune.platform.infra.storage import StorageLocation

STATE_FILE = "mritune_search.json"
TUNE_STATE_PREFIX = "experiment_state-"  # Ray Tune's experiment state; Tune resumes from the newest by name


def read_search_state(folder: "StorageLocation") -> dict[str, Any]:
    """The state of the search in ``folder`` (local or a URI).

    Raises:
        MissingInputError: ``folder`` holds no ``STATE_FILE``, so it is not a search folder.
    """
    from mritune.platform.infra import storage

    state_file = folder.child(STATE_FILE)
    if not storage.is_file(state_file):
        raise MissingInputError(f"{folder} is not a search folder (no {STATE_FILE})")
    return json.loads(storage.read_bytes(state_file))


def newest_tune_state(folder: "StorageLocation") -> "StorageLocation | None":
    """The experiment state file Tune resumes from (the newest ``experiment_state-*.json`` by name), or None."""
    import pyarrow.fs

    from mritune.platform.infra import storage

    filesystem, path = storage.open_filesystem(folder)
    names = [info.base_name for info in filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
             if info.type == pyarrow.fs.FileType.File and info.base_name.startswith(TUNE_STATE_PREFIX)
             and info.base_name.endswith(".json")]
    return folder.child(max(names)) if names else None


def check_tune_state_whole(folder: "StorageLocation") -> None:
    """Refuse a search whose Tune experiment state is cut short.

    Ray writes that file in place (no temporary file and rename), so a driver killed while writing it leaves it
    truncated; ``Tuner.restore`` then logs an error and starts the search again from no trials, which a resume
    must not do silently. Read before anything is changed, so the search stays as the kill left it.

    Raises:
        UserInputError: The newest state file is not whole JSON.
    """
    from mritune.platform.infra import storage

    newest = newest_tune_state(folder)
    if newest is None:
        return  # Tuner.can_restore decides what a folder without one means
    try:
        json.loads(storage.read_bytes(newest))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError alike
        raise UserInputError(
            f"{newest} is cut short ({error.__class__.__name__} at byte {getattr(error, 'pos', '?')}): the driver "
            "was killed while Ray Tune was writing it, and Tune would restart this search from no trials; "
            "nothing was changed (its MLflow runs and checkpoints stay); start a new search"
        ) from None
