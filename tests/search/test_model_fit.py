"""Hyperparameter fits in the background: suggest() never waits for one, and uses it once it has finished."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from mritune.search.model_fit import HyperparameterFits
from tests.search.searchers import SEARCHERS, make, quadratic

GP_SEARCHERS = ["gpyopt_kb", "bayesopt", "mobster_joint"]
DATA = Path(__file__).parent / "data"


class HeldFits(HyperparameterFits):
    """Real fits that wait on ``release`` before they start: the test decides when a background fit ends."""

    def __init__(self, release: threading.Event, **kwargs) -> None:
        super().__init__(**kwargs)
        self.release = release

    def request(self, fit, *, inline=False):
        if inline:
            return super().request(fit, inline=True)

        def held():
            self.release.wait()
            return fit()

        return super().request(held)


def _filled(name: str, n: int, **options):
    searcher = make(name, **options)
    rng = np.random.default_rng(0)
    for i in range(n):
        config = searcher._space.decode(searcher._space.sample_unit(rng)[0])
        searcher._log.add_pending(f"r{i}", config)
        searcher.on_trial_complete(f"r{i}", {"loss": quadratic(config), "training_iteration": 1})
    searcher._n_suggested = 100  # past the random design
    return searcher


def test_fits_run_inline_or_on_one_thread_and_hand_back_their_result():
    release = threading.Event()
    fits = HyperparameterFits(model_fit="background")
    assert fits.request(lambda: [1.0], inline=True) and fits.latest() == [1.0]
    assert fits.request(lambda: (release.wait(), [2.0])[1])
    assert fits.running() and fits.latest() == [1.0]  # returned at once; the old result stays in use
    assert not fits.request(lambda: [3.0]) and fits.counts == {"inline": 1, "background": 1, "skipped": 1}
    release.set()
    assert fits.wait(timeout=60) and fits.latest() == [2.0]


def test_a_failed_background_fit_is_raised_by_the_next_call():
    fits = HyperparameterFits(model_fit="background")
    fits.request(lambda: [1.0], inline=True)
    fits.request(lambda: np.linalg.cholesky(-np.eye(2)))
    fits.wait(timeout=60)
    with pytest.raises(np.linalg.LinAlgError):
        fits.latest()
    assert fits.latest() == [1.0]  # raised once; the last good fit stays


def test_unknown_model_fit_is_named():
    with pytest.raises(ValueError, match="model_fit must be one of background, inline, got 'thread'"):
        HyperparameterFits(model_fit="thread")
    with pytest.raises(ValueError, match="model_fit"):
        make("gpyopt_kb", model_fit="thread")


@pytest.mark.parametrize("name", GP_SEARCHERS)
def test_suggest_answers_from_the_last_fit_while_a_refit_runs(name):
    release = threading.Event()
    searcher = _filled(name, 40, refit_every=1) if name.startswith("mobster") else _filled(name, 40)
    searcher.fits = HeldFits(release, model_fit="background")
    first = searcher.suggest("first")  # no fit yet: inline
    fitted = searcher.fits.latest()
    assert fitted is not None and searcher.fits.counts["inline"] == 1
    searcher.on_trial_complete("first", {"loss": 0.0, "training_iteration": 1})  # the refit sees new data
    configs = [searcher.suggest(f"held{i}") for i in range(3)]  # the refit they asked for is held
    assert searcher.fits.running() and searcher.fits.latest() == fitted
    assert searcher.fits.counts["background"] == 1 and searcher.fits.counts["skipped"] == 2
    encoded = [searcher._space.encode(c) for c in configs]
    assert min(np.abs(a - b).max() for i, a in enumerate(encoded) for b in encoded[i + 1:]) > 1e-6
    release.set()
    assert searcher.fits.wait(timeout=120)
    assert searcher.fits.latest() != fitted  # the refit on 40 points moved the hyperparameters
    searcher.suggest("after")
    assert searcher.get_state()["model"]["hyperparameters"] == searcher.fits.latest()


@pytest.mark.parametrize("name", GP_SEARCHERS)
def test_inline_fits_keep_a_seeded_sequence(name):
    def run() -> list[dict]:
        searcher = _filled(name, 35, model_fit="inline")
        out = []
        for i in range(4):
            out.append(searcher.suggest(f"s{i}"))
            searcher.on_trial_complete(f"s{i}", {"loss": quadratic(out[-1]), "training_iteration": 1})
        return out

    assert run() == run()


@pytest.mark.parametrize("name", ["gpyopt_kb", "bayesopt", "mobster_joint"])
def test_states_written_before_issue_25_still_load(name):
    """Version-1 states saved by the searchers before the bounded fits and background fits (commit 6da005d)."""
    state = json.loads((DATA / f"state_v1_{name}.json").read_text())
    fresh = SEARCHERS[name](space=make(name)._space, random_state_seed=99, model_fit="inline")
    fresh.set_state(state)
    assert [o["trial_id"] for o in fresh.observations] == [f"t{i}" for i in range(8)]
    assert fresh.fits.peek() == state["model"].get("hyperparameters")
    config = fresh.suggest("after-restore")
    expected = json.loads((DATA / "state_v1_next_suggestions.json").read_text())[name]
    if name == "bayesopt":
        # Its kernel is now fitted on the real observations only (running trials' lies were fitted before).
        assert set(config) == set(expected) and config != state["pending"][0]["config"]
    else:  # 8 observations: every observation fitted, inline, as before; the same suggestion
        assert config == expected
    fresh.on_trial_complete("running-1", {"loss": 1.0, "training_iteration": 1})
    assert len(fresh.observations) == 9
