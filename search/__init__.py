"""mritune's Ray Tune searchers: ``GPyOptSearch``, ``BayesOptSearch``, ``RandomSearch`` and the factories.

``from mritune.search import GPyOptSearch`` works, but importing this package imports nothing heavy: each name is
loaded from its own module (Ray, GPy, bayes_opt) on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GPyOptSearch": "mritune.search.gpyopt_searcher",
    "BayesOptSearch": "mritune.search.bayesopt_searcher",
    "RandomSearch": "mritune.search.random_searcher",
    "build_searcher": "mritune.search.factory",
    "build_scheduler": "mritune.search.factory",
    "parse_space": "mritune.search.space",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mritune.search' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
