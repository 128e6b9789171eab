"""The options each searcher accepts from a spec, declared without importing the searcher (no Ray, no GPyOpt).

``search/factory.py`` keeps one entry per searcher in ``SEARCHER_OPTIONS`` beside its class registry; the spec
schema checks ``search.options`` against it at parse time (before any run exists), and ``build_searcher`` checks
again for direct callers. The searchers' constructors validate the same value sets (they import them from here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACQUISITIONS = ("EI", "LCB", "MPI")
PENDING_STRATEGIES = ("kriging_believer", "constant_liar", "local_penalization")
TARGET_TRANSFORMS = ("log", "standardize")
BAYESOPT_PENDING = ("kriging_believer", "constant_liar")
MOBSTER_MODELS = ("joint", "per_rung")  # search/mobster_model.py: a joint freeze-thaw GP, or one GP per rung
MODEL_FITS = ("background", "inline")  # search/model_fit.py: where kernel hyperparameters are fitted


@dataclass(frozen=True, kw_only=True)
class Option:
    """One searcher option: a choice among strings, or an integer with a lower bound (None allowed if nullable).

    Args:
        choices: The accepted strings; None for an integer option.
        minimum: The smallest accepted integer (integer options only).
        nullable: Whether ``None`` (YAML ``null``) is accepted.

    Example:
        >>> Option(choices=("EI", "LCB")).problem("PI")
        "must be one of EI, LCB, got 'PI'"
    """

    choices: tuple[str, ...] | None = None
    minimum: int = 1
    nullable: bool = False

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (a phrase to follow the option's name), or None when it is accepted."""
        if value is None and self.nullable:
            return None
        if self.choices is not None:
            return None if value in self.choices else f"must be one of {', '.join(self.choices)}, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            return f"must be an integer >= {self.minimum}, got {value!r}"
        return None


def option_problem(searcher: str, declared: dict[str, Option], options: dict[str, Any]) -> str | None:
    """The first problem of ``options`` for ``searcher`` as ``"<key>: <what>"``, or None when all are accepted."""
    for key in sorted(options):
        if key not in declared:
            accepted = ", ".join(declared) or "none"
            return f"{key}: unknown option for searcher {searcher!r}; accepted: {accepted}"
        problem = declared[key].problem(options[key])
        if problem:
            return f"{key}: {problem}"
    return None
