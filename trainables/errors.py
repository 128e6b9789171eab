"""mritune's own error types: problems with the user's input or environment, which the CLI shows as one line.

Anything mritune raises about what a person gave it (a spec, a path, an address, a token, an image, a model) is a
``MrituneUserError``; every other exception is a bug or a failure of a library and keeps its traceback
(``platform/cli/app.py``). Each type also derives from the built-in it replaces (``UserInputError`` is a
``ValueError``, ...), so callers that catch the built-in keep working.

The types live here, in the part every other part may import (docs/architecture.md, "Who may import whom"):
trainables, deploy and platform all raise them.
"""

from __future__ import annotations


class MrituneUserError(Exception):
    """Base: the user's input or environment is wrong; the message says what and how to fix it, in one line."""


class UserInputError(MrituneUserError, ValueError):
    """A value the user gave cannot be used (a spec key, an option, a dataset, an image, a model)."""


class MissingInputError(MrituneUserError, FileNotFoundError):
    """A file, folder, search or model the user named does not exist."""


class AccessDenied(MrituneUserError, PermissionError):
    """A path cannot be written or read, or a server refused the credentials."""


class ServiceUnavailable(MrituneUserError, ConnectionError):
    """A server the user pointed at (Ray, MLflow) cannot be reached or refused the connection."""


class MissingDependency(MrituneUserError, ImportError):
    """An optional package a chosen feature needs is not installed (the message names the pip command)."""


class ServiceFailed(MrituneUserError, RuntimeError):
    """A server answered with an error mritune cannot work around (e.g. the registry while promoting)."""


class NotAFolder(MrituneUserError, NotADirectoryError):
    """A path the user gave as a folder is a file."""
