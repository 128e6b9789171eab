"""How values are shown to a person: one rule for tables, reports, console and progress lines.

A leaf module (it imports nothing of mritune), so every view can use it without importing another view.
"""

from __future__ import annotations


def short_value(value, digits: int = 4) -> str:
    """A hyperparameter's value as tables, reports and progress lines show it: floats to ``digits`` digits."""
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def floor_text(floor) -> str:
    """What follows a score that has a real-vs-real floor (``Task.floor_metrics``): ``", floor 18.3"``; ``""``
    when there is none or it is not a finite number. Every view writes a floor this way ("swd 41.2, floor 18.3")."""
    import math

    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not math.isfinite(floor):
        return ""
    return f", floor {floor:.4g}"
