"""The search summary reads the searcher's saved state; a missing or unreadable one is logged, not silent."""

from __future__ import annotations

import logging

from mritune.platform.run.runner import _searcher_state


def test_missing_state_is_logged(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="mritune.platform.run.runner"):
        assert _searcher_state(tmp_path) is None
    assert "no searcher state" in caplog.text


def test_unreadable_state_is_logged_as_a_warning(tmp_path, caplog):
    (tmp_path / "searcher-state-2026-01-01.pkl").write_bytes(b"\x80\x04\x95 not json")
    with caplog.at_level(logging.WARNING, logger="mritune.platform.run.runner"):
        assert _searcher_state(tmp_path) is None
    assert "is not JSON" in caplog.text


def test_json_state_is_read(tmp_path):
    (tmp_path / "searcher-state-2026-01-01.json").write_text('{"version": 1}')
    assert _searcher_state(tmp_path) == {"version": 1}
