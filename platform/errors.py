"""How the platform shows an error to a person: one line, never a traceback (the CLI, the cluster and jobs)."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when the message is empty.

    Ray's and MLflow's errors often carry a traceback or a server's response body after the first line.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
