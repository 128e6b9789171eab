"""A search's folder and its state file: the one place runner (writes it, resumes from it) and the report (reads
it) learn where a search is tracked.

``mritune_search.json`` in the experiment folder holds the spec (as parsed), the tracking URI, the experiment id
and the parent run id (``runner`` writes it when the search starts).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mritune.trainables.errors import MissingInputError

if TYPE_CHECKING:
    from mritune.platform.storage import StorageLocation

STATE_FILE = "mritune_search.json"


def read_search_state(folder: "StorageLocation") -> dict[str, Any]:
    """The state of the search in ``folder`` (local or a URI).

    Raises:
        MissingInputError: ``folder`` holds no ``STATE_FILE``, so it is not a search folder.
    """
    from mritune.platform import storage

    state_file = folder.child(STATE_FILE)
    if not storage.is_file(state_file):
        raise MissingInputError(f"{folder} is not a search folder (no {STATE_FILE})")
    return json.loads(storage.read_bytes(state_file))
