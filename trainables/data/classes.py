"""The four canonical Alzheimer's-stage classes and the mapping from public dataset folder names."""

from __future__ import annotations

import re

# Severity order; the integer label of a class is its index here.
CLASS_NAMES: tuple[str, ...] = ("NonDemented", "VeryMildDemented", "MildDemented", "ModerateDemented")

_KEYS = {re.sub(r"[^a-z]", "", name.lower()): name for name in CLASS_NAMES}


def canonical_class(folder_name: str) -> str | None:
    """Map a folder name such as ``Very_Mild_Demented`` or ``very mild demented`` to its canonical class.

    Returns None for a folder that is not one of the four classes.
    """
    return _KEYS.get(re.sub(r"[^a-z]", "", folder_name.lower()))
