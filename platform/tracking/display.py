"""How values are shown to a person: one rule for tables, reports, console and progress lines.

A leaf module (it imports nothing of mritune), so every view can use it without importing another view.
"""

from __future__ import annotations


def short_value(value, digits: int = 4) -> str:
    """A hyperparameter's value as tables, reports and progress lines show it: floats to ``digits`` digits."""
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)
