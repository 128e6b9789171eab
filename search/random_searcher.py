"""RandomSearch: the seeded baseline, uniform in the shared unit-cube encoding (log parameters log-uniform).

It is a full ``Searcher`` (observations view, save/restore) so the platform logs and resumes it like the others.
"""

from __future__ import annotations

import numpy as np

from mritune.search.searcher_base import UnitCubeSearcher


class RandomSearch(UnitCubeSearcher):
    """Every suggestion is a uniform draw in the unit cube; results are recorded but never modelled."""

    def _next_point(self) -> np.ndarray:
        return self._random_point()
