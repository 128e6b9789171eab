"""A whole copy of Tune's experiment state, kept while the search runs and put back when a kill cut the state short."""

from __future__ import annotations

import json

from mritune.platform.run.tune_state import TuneStateKeeper, restore_whole_tune_state
from mritune.platform.spec.search_folder import check_tune_state_whole
from mritune.platform.infra.storage import parse_location

STATE = "experiment_state-2026-12-06_18-56-15.json"


def _state(trials: int) -> bytes:
    return json.dumps({"trial_data": [f'{{"trial_id": "t{i}"}}' for i in range(trials)]}).encode()


def test_the_keeper_copies_a_whole_state_and_keeps_the_last_copy_while_one_is_being_written(tmp_path):
    ticks = iter([0.0, 1.0, 20.0, 40.0])
    keeper = TuneStateKeeper(folder=tmp_path, every_s=15.0, clock=lambda: next(ticks))
    (tmp_path / STATE).write_bytes(_state(3))
    keeper.on_step_end(iteration=1, trials=[])  # t=0: copied
    assert (tmp_path / (STATE + ".whole")).read_bytes() == _state(3)
    (tmp_path / STATE).write_bytes(_state(5))
    keeper.on_step_end(iteration=2, trials=[])  # t=1: too soon, not copied
    assert (tmp_path / (STATE + ".whole")).read_bytes() == _state(3)
    (tmp_path / STATE).write_bytes(_state(9)[:40])  # Ray is writing it: cut short
    keeper.on_step_end(iteration=3, trials=[])  # t=20: not whole, the last copy stays
    assert (tmp_path / (STATE + ".whole")).read_bytes() == _state(3)
    (tmp_path / STATE).write_bytes(_state(9))
    keeper.on_step_end(iteration=4, trials=[])  # t=40
    assert (tmp_path / (STATE + ".whole")).read_bytes() == _state(9)
    assert not list(tmp_path.glob(".*.tmp")), "the copy is renamed into place"


def test_a_cut_short_state_is_replaced_by_its_whole_copy_and_the_resume_check_then_passes(tmp_path):
    (tmp_path / "experiment_state-2026-12-06_18-00-00.json").write_bytes(_state(1))  # an older session: ignored
    (tmp_path / STATE).write_bytes(_state(500)[:3000])
    folder = parse_location(str(tmp_path))
    try:
        check_tune_state_whole(folder)
        raise AssertionError("a cut-short state must be refused")
    except ValueError as error:
        assert "is cut short" in str(error)
    (tmp_path / (STATE + ".whole")).write_bytes(_state(480))
    assert restore_whole_tune_state(tmp_path) == tmp_path / STATE
    assert (tmp_path / STATE).read_bytes() == _state(480)
    assert (tmp_path / (STATE + ".cut-short")).read_bytes() == _state(500)[:3000], "the cut file is kept"
    check_tune_state_whole(folder)


def test_without_a_whole_copy_nothing_changes(tmp_path):
    (tmp_path / STATE).write_bytes(_state(500)[:3000])
    assert restore_whole_tune_state(tmp_path) is None
    assert (tmp_path / STATE).read_bytes() == _state(500)[:3000]
    (tmp_path / STATE).write_bytes(_state(2))
    assert restore_whole_tune_state(tmp_path) is None, "a whole state is left as it is"


def test_the_searchers_state_files_are_kept_and_put_back_with_the_experiment_state(tmp_path):
    """Tune's save writes the search generator's and the searcher's files beside the state; put back alone, the
    state would list fewer trials than the searcher remembers suggesting (a 1,000-trial run ended 5 short)."""
    session = STATE.removeprefix("experiment_state-").removesuffix(".json")
    generator, searcher = tmp_path / f"search_gen_state-{session}.json", tmp_path / f"searcher-state-{session}.pkl"
    (tmp_path / STATE).write_bytes(_state(480))
    generator.write_bytes(b"counter 480")
    searcher.write_bytes(b"observations 470")
    TuneStateKeeper(folder=tmp_path).keep()
    generator.write_bytes(b"counter 500")  # later saves, then a kill while the state was being written
    searcher.write_bytes(b"observations 490")
    (tmp_path / STATE).write_bytes(_state(500)[:3000])
    assert restore_whole_tune_state(tmp_path) == tmp_path / STATE
    assert (tmp_path / STATE).read_bytes() == _state(480)
    assert (generator.read_bytes(), searcher.read_bytes()) == (b"counter 480", b"observations 470")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".whole")) == [], "the copies went back"
