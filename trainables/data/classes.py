"""The classes of a dataset: the four Kaggle Alzheimer's-stage classes by default, or a list the spec names.

A ``ClassList`` maps folder names to class names whatever their case, underscores or spaces, and its order is
the model's output order (the integer label of a class is its index).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mritune.trainables.errors import UserInputError

# Severity order; the integer label of a class is its index here.
CLASS_NAMES: tuple[str, ...] = ("NonDemented", "VeryMildDemented", "MildDemented", "ModerateDemented")


def class_key(name: str) -> str:
    """``Very_Mild_Demented``, ``very mild demented`` and ``VeryMildDemented`` share one key."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class ClassList:
    """Class names in label order, and which folder name is which class.

    Args:
        names: The class names, in the model's output order; at least two, distinct after ``class_key``.

    Raises:
        ValueError: fewer than two names, an empty name, or two names that match the same folders.

    Example:
        >>> ClassList(("CN", "MCI", "AD")).match("mci")
        'MCI'
    """

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.names) < 2 or not all(isinstance(n, str) and class_key(n) for n in self.names):
            raise UserInputError(f"classes must be two or more names of letters or digits, got {list(self.names)}")
        keys = [class_key(n) for n in self.names]
        clash = next((n for n, k in zip(self.names, keys) if keys.count(k) > 1), None)
        if clash is not None:
            raise UserInputError(f"classes {list(self.names)} name {clash!r} twice (case, spaces and _ are ignored)")

    def match(self, folder_name: str) -> str | None:
        """The class a folder of this name holds, or None for a folder that is not one of the classes."""
        key = class_key(folder_name)
        return next((name for name in self.names if class_key(name) == key), None)


KAGGLE_CLASSES = ClassList(CLASS_NAMES)


def canonical_class(folder_name: str) -> str | None:
    """Map a folder name such as ``Very_Mild_Demented`` or ``very mild demented`` to its canonical class.

    Returns None for a folder that is not one of the four classes.
    """
    return KAGGLE_CLASSES.match(folder_name)
