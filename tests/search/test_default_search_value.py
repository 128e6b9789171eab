"""The shipped default searcher must keep beating random search on the recorded classifier table.

Replays the committed learning-curve table (benchmarks/curves/, the real classifier at the --fast resolution)
through the quick spec's searcher and scheduler as ``mritune search`` builds them (benchmarks/study), against
random search under the same ASHA settings and under FIFO, on the same paired seeds. A change to a searcher, the
scheduler settings or the quick spec that makes the default lose to random fails here. The margins are what the
search study measured (docs/search-study.md); the median over the seeds is compared, not one lucky run.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
TABLE = ROOT / "benchmarks" / "curves" / "classifier_32px.jsonl"
SEEDS = range(10)
BUDGET_FTE = 10


@pytest.fixture(scope="module")
def table():
    from mritune.search.replay import RecordedCurves

    return RecordedCurves.load(TABLE)


def _median_regret(table, method: str) -> float:
    from study.run import run_method
    from study.stats import value_at

    regrets = [value_at(run_method(table, method, seed, budget_fte=BUDGET_FTE)["trace"], BUDGET_FTE * table.max_t, 2,
                        table.best_score) for seed in SEEDS]
    return statistics.median(regrets)


def test_the_default_searcher_beats_random_search_on_the_recorded_table(table):
    from study.methods import default_method

    default = default_method()
    random_asha = f"random+asha-g{default.grace_period}r{default.reduction_factor:g}"
    mine = _median_regret(table, "default")
    assert mine <= _median_regret(table, random_asha)
    assert mine <= _median_regret(table, "random+fifo")
