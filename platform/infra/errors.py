"""How the platform shows an error to a person: one line for mritune's own user errors, a traceback for the rest.

mritune's error types (``MrituneUserError`` and its subclasses) live in ``trainables/errors.py``, the part every
other part may import; they are re-exported here for the platform's code.
"""

from __future__ import annotations

import os
import sys
import traceback

from mritune.trainables.errors import (AccessDenied, MissingDependency, MissingInputError, MrituneUserError,
                                       NotAFolder, ServiceFailed, ServiceUnavailable, UserInputError)

__all__ = [
    "AccessDenied", "MissingDependency", "MissingInputError", "MrituneUserError", "NotAFolder", "ServiceFailed",
    "ServiceUnavailable", "UserInputError", "EXIT_USER_ERROR", "EXIT_INTERNAL_ERROR", "DEBUG_ENV", "first_line",
    "report_error",
]

# Exit codes of the `mritune` command: a user error (as click's usage errors), and anything else (sysexits'
# EX_SOFTWARE), so scripts and job logs tell bad input from a bug.
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 70
# Set to 1 (or pass --debug) to see the traceback of user errors too.
DEBUG_ENV = "MRITUNE_DEBUG"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when the message is empty.

    Ray's and MLflow's errors often carry a traceback or a server's response body after the first line.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def debug_enabled() -> bool:
    """True when ``MRITUNE_DEBUG`` is set to something other than empty, 0, false or no."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def report_error(exc: Exception, *, debug: bool = False) -> int:
    """Print ``exc`` for a person on stderr and return the command's exit code.

    A ``MrituneUserError`` is one line (``error: ...``) unless ``debug``; anything else is a bug or a library's
    failure: its full traceback, then a line saying so.
    """
    if isinstance(exc, MrituneUserError):
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        print(f"error: {first_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    traceback.print_exception(exc, file=sys.stderr)
    print(f"internal error ({type(exc).__name__}): this is a bug in mritune or a library it uses, not your input; "
          "please report it with the traceback above", file=sys.stderr)
    return EXIT_INTERNAL_ERROR
