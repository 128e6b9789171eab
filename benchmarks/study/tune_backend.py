"""Replay a recorded table through real Ray Tune: the searcher and scheduler ``mritune search`` builds, a function
trainable that reports each recorded epoch after its recorded seconds times ``time_scale``.

Used to check the simulated backend (``simulate.py``): on random search the two must agree. A trial finds its place
in the study's pairing (which recorded seed it replays) from Tune's trial counter, which is in its directory name.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from study.simulate import METRIC, Trace, _Trial, trial_slots

_COUNTER = re.compile(r"_[0-9a-f]{8}_(\d+)_")


def replay_trainable(config: dict, table, slots, time_scale: float) -> None:
    from ray import tune

    index = trial_index(Path(tune.get_context().get_trial_dir()).name)
    row = table.nearest(config)
    curve = table.curve(row, int(slots[index]))
    for epoch in range(curve.epochs):
        time.sleep(float(curve.seconds[epoch]) * time_scale)
        tune.report({METRIC: float(curve.val[epoch]), "val_loss": float(curve.val_loss[epoch]),
                     "replay_row": row, "replay_index": index})
    if curve.epochs < table.max_t:
        raise RuntimeError(f"the recorded training of row {row} diverged after epoch {curve.epochs}")


def trial_index(trial_dir_name: str) -> int:
    """The 0-based order in which Tune created the trial (its experiment tag starts with a 1-based counter)."""
    match = _COUNTER.search(trial_dir_name)
    if not match:
        raise RuntimeError(f"no trial counter in {trial_dir_name!r}")
    return int(match.group(1)) - 1


def run_tune(table, searcher, scheduler, constants: dict, *, seed: int, budget_epochs: int, workers: int,
             time_scale: float, storage: str, name: str) -> dict:
    """One replayed search through Tune; ``searcher`` has its search properties already (``prepare_searcher``),
    so the Tuner gets only the spec's constant settings as its ``param_space``."""
    import ray
    from ray import tune
    from ray.tune import Callback
    from ray.tune.stopper import Stopper

    trace = Trace(table=table)
    state = {"epochs": 0, "start": time.perf_counter()}

    class Record(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            mine = trace.trials.get(trial.trial_id)
            if mine is None:
                mine = _Trial(trial_id=trial.trial_id, index=int(result["replay_index"]),
                              row=int(result["replay_row"]), curve=None)
                trace.add(mine)
            state["epochs"] += 1
            mine.epochs = int(result["training_iteration"])
            mine.best = max(mine.best, float(result[METRIC]))
            trace.after_epoch(mine, state["epochs"], (time.perf_counter() - state["start"]) / time_scale)

        def on_trial_error(self, iteration, trials, trial, **info):
            mine = trace.trials.get(trial.trial_id)
            if mine is None:  # failed before its first report: not a recorded divergence but a broken setup
                state["broken"] = trial.error_file or trial.trial_id
                return
            trace.after_error(mine, state["epochs"], (time.perf_counter() - state["start"]) / time_scale)

    class EpochBudget(Stopper):
        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            return state["epochs"] >= budget_epochs or "broken" in state

    # Workers cannot import this benchmark folder: the trainable travels by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    trainable = tune.with_parameters(replay_trainable, table=table, slots=trial_slots(seed, len(table.seeds)),
                                     time_scale=time_scale)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 2 / workers}),
        param_space=constants,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=100_000,
                                    reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0, stop=EpochBudget(),
                                  callbacks=[Record()], failure_config=tune.FailureConfig(max_failures=0)),
    )
    tuner.fit()
    if "broken" in state:
        raise RuntimeError(f"a replay trial failed before its first epoch: {state['broken']}")
    return {"trace": trace.points, "trials": len(trace.trials), "epochs": state["epochs"],
            "seconds": round((time.perf_counter() - state["start"]) / time_scale, 1), "searcher_s": None,
            "trials_run": trace.trials_run()}
