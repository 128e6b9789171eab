"""Small real Tuner runs: GPyOptSearch and MobsterSearch + ASHA on a local Ray, and the searcher state Tune writes."""

from __future__ import annotations

import math

import pytest

from mritune.search.factory import build_scheduler, build_searcher
from mritune.search.gpyopt_searcher import GPyOptSearch

# For the shared local_ray fixture: Tune's result files are not needed here (the variable is restored afterwards,
# so later modules' Tuners write them).
LOCAL_RAY_OPTIONS = {"env": {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}}


def _curve(config: dict) -> None:
    from ray import tune

    # A "training curve" that improves with epochs; its floor depends on the config (best at x=0.3).
    floor = (config["x"] - 0.3) ** 2 + 0.1 * config["layers"]
    for epoch in range(1, config["epochs"] + 1):
        tune.report({"val_loss": floor + 1.0 / epoch})


def test_tuner_with_asha_feeds_last_rung_values_to_the_searcher(local_ray, tmp_path):
    from ray import tune

    searcher = build_searcher("gpyopt", metric="val_loss", mode="min", seed=0, max_concurrent=2,
                              n_initial_points=3)
    tuner = tune.Tuner(
        tune.with_resources(_curve, {"cpu": 0.5}),
        param_space={"x": tune.uniform(-1.0, 1.0), "layers": tune.randint(1, 4), "epochs": 9},
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=8, reuse_actors=True,
                                    scheduler=build_scheduler("asha", max_t=9, grace_period=1, reduction_factor=3,
                                                              metric="val_loss", mode="min")),
        run_config=tune.RunConfig(name="asha", storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 8
    iterations = [r.metrics["training_iteration"] for r in results]
    assert min(iterations) < 9, f"ASHA stopped nothing: {iterations}"

    # Tune saved the searcher's JSON state in the experiment folder; a fresh searcher picks it up.
    restored = GPyOptSearch()
    restored.restore_from_dir(str(tmp_path / "asha"))
    assert restored.metric == "val_loss" and restored.mode == "min"
    by_config = {(o["config"]["x"], o["config"]["layers"]): o for o in restored.observations}
    assert len(by_config) == 8
    for result in results:
        observation = by_config[(result.config["x"], result.config["layers"])]
        # The model learned the value at the trial's last reported rung, early-stopped or not.
        assert observation["status"] == "ok"
        assert math.isclose(observation["value"], result.metrics["val_loss"])
        assert observation["iteration"] == result.metrics["training_iteration"]


def test_mobster_under_asha_learns_every_rung_a_trial_reached(local_ray, tmp_path):
    from ray import tune

    from mritune.search.mobster_searcher import MobsterSearch

    asha = {"max_t": 9, "grace_period": 1, "reduction_factor": 3}
    searcher = build_searcher("mobster", metric="val_loss", mode="min", seed=0, max_concurrent=2,
                              n_initial_points=3, **asha)
    tuner = tune.Tuner(
        tune.with_resources(_curve, {"cpu": 0.5}),
        param_space={"x": tune.uniform(-1.0, 1.0), "layers": tune.randint(1, 4), "epochs": 9},
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=8, reuse_actors=True,
                                    scheduler=build_scheduler("asha", metric="val_loss", mode="min", **asha)),
        run_config=tune.RunConfig(name="mobster", storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 8

    restored = MobsterSearch(**asha)
    restored.restore_from_dir(str(tmp_path / "mobster"))
    state = restored.get_state()
    trial_of = {(o["config"]["x"], o["config"]["layers"]): o["trial_id"] for o in state["finished"]}
    learned = {(trial_id, level): value for trial_id, level, value in state["rungs"]}
    reached_above_first = 0
    for result in results:
        config, last = result.config, result.metrics["training_iteration"]
        trial_id = trial_of[(config["x"], config["layers"])]
        floor = (config["x"] - 0.3) ** 2 + 0.1 * config["layers"]
        expected = {level: floor + 1.0 / level for level in (1, 3, 9) if level <= last}
        # Every level the trial reached, and only those: epochs 2, 4-8 are between rungs.
        assert {lvl: v for (tid, lvl), v in learned.items() if tid == trial_id} == pytest.approx(expected)
        reached_above_first += last > 1
    assert reached_above_first >= 2, "ASHA promoted too few trials to exercise higher rungs"
