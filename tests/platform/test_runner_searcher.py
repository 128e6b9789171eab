"""The runner builds the spec's searcher; ``algorithm: mobster`` gets the scheduler section's ASHA settings."""

from __future__ import annotations

import pytest

from mritune.platform.run.runner import build_spec_searcher
from tests.platform.search_helpers import tiny_spec


def test_mobster_gets_the_scheduler_settings_of_the_spec(tmp_path):
    spec = tiny_spec(tmp_path, overrides=("search.algorithm=mobster", "scheduler.max_t=8",
                                          "scheduler.grace_period=2", "scheduler.reduction_factor=2",
                                          "search.options={n_initial_points: 2, model: per_rung}"))
    searcher = build_spec_searcher(spec, max_concurrent=2).searcher  # inside the ConcurrencyLimiter of max_concurrent
    assert searcher.levels == (2, 4, 8)
    assert searcher.metric == "val_macro_f1" and searcher.mode == "max"


def test_rung_settings_in_search_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="search.options.max_t"):  # at parse time: nothing has started
        tiny_spec(tmp_path, overrides=("search.algorithm=mobster", "search.options={max_t: 5}"))


def test_other_searchers_are_built_as_before(tmp_path):
    searcher = build_spec_searcher(tiny_spec(tmp_path), max_concurrent=2).searcher
    assert type(searcher).__name__ == "GPyOptSearch"
