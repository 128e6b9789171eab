"""Small helpers that turn a flat config mapping into typed, checked values with one-line errors naming the key.

Searchers hand numbers as floats (GPyOpt proposes 32.0 for a batch size) and the CLI hands strings parsed by
YAML, so integers accept integral floats and booleans accept 0/1 and "true"/"false".
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Mapping
from mritune.trainables.errors import UserInputError


def check_known_keys(config: Mapping[str, Any], cls: type, what: str) -> None:
    allowed = sorted(f.name for f in fields(cls))
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise UserInputError(f"unknown {what} config key {unknown[0]!r}; allowed keys: {', '.join(allowed)}")


def as_int(key: str, value: Any, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise UserInputError(f"{key} must be an integer in [{low}, {high}], got {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise UserInputError(f"{key} must be an integer in [{low}, {high}], got {number}")
    return number


def as_float(
    key: str, value: Any, *, low: float, high: float, low_open: bool = False, high_open: bool = False
) -> float:
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserInputError(f"{key} must be a number in {interval}, got {value!r}")
    number = float(value)
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if too_low or too_high:
        raise UserInputError(f"{key} must be a number in {interval}, got {number}")
    return number


def as_choice(key: str, value: Any, allowed: tuple) -> Any:
    """One of ``allowed``; strings compare case-insensitively, numbers within rounding."""
    for option in allowed:
        if isinstance(option, str) and isinstance(value, str) and value.strip().lower() == option:
            return option
        if isinstance(option, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isclose(float(value), option, rel_tol=1e-6):
                return option
    shown = ", ".join(str(option) for option in allowed)
    raise UserInputError(f"{key} must be one of {shown}, got {value!r}")


def as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise UserInputError(f"{key} must be true or false, got {value!r}")
