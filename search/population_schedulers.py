"""``LineagePBT`` and ``LineagePB2``: Ray Tune's PopulationBasedTraining and PB2 that report every exploit.

Two additions to Ray's schedulers (``search/population.py`` says what is perturbed and how):

- ``on_exploit(ExploitEvent)`` is called each time a trial copies another trial's checkpoint and config. The hook
  is ``PopulationBasedTraining._exploit``, the one method where Ray hands a trial another trial's checkpoint and
  its explored config (Ray has no callback for it; its own record is the text of ``pbt_global.txt``).
- A trial is never perturbed at ``max_t``, its last epoch: it would restart only to find nothing left to train.

Imported only where a scheduler is built (``search/factory.py``); Tune pickles schedulers with the experiment, so
the classes live at module level.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler
from ray.tune.schedulers.pb2 import PB2

from mritune.search.population import PBT, ClipToSpace, ExploitEvent, mutated_keys, pb2_bounds, pbt_mutations

ExploitListener = Callable[[ExploitEvent], None]


class _LineageMixin:
    """What mritune adds to Ray's PBT and PB2 (see the module's docstring); set up by ``_init_lineage``."""

    def _init_lineage(self, *, max_t: int, on_exploit: ExploitListener | None) -> None:
        self._max_t = max_t
        self._on_exploit = on_exploit
        self._last_operations: dict = {}
        self.lineage: list[ExploitEvent] = []  # this driver session's exploits, in order

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if result.get(self._time_attr, 0) >= self._max_t:
            return TrialScheduler.CONTINUE  # the last epoch: a perturbation now would train nothing
        return super().on_trial_result(tune_controller, trial, result)

    def _get_new_config(self, trial, trial_to_clone):
        new_config, operations = super()._get_new_config(trial, trial_to_clone)
        self._last_operations = operations  # PBT's "* 1.2", "resample", "shift left"; PB2's are empty
        return new_config, operations

    def _exploit(self, tune_controller, trial, trial_to_clone) -> None:
        keys = list(self._hyperparam_mutations)
        previous = {key: trial.config.get(key) for key in keys}
        epoch = int(self._trial_state[trial].last_train_time)  # this result's epoch, before Ray overwrites it
        super()._exploit(tune_controller, trial, trial_to_clone)
        # Ray resumes the trial from the clone's checkpoint of this result (its state's last_result).
        source_result = self._trial_state[trial_to_clone].last_result or {}
        event = ExploitEvent(
            trial_id=trial.trial_id, source_trial_id=trial_to_clone.trial_id, epoch=epoch,
            source_epoch=int(source_result.get(self._time_attr, 0)), previous=previous,
            copied={key: trial_to_clone.config.get(key) for key in keys},
            new={key: trial.config.get(key) for key in keys},
            operations={key: str(op) for key, op in self._last_operations.items()}, time=time.time(),
        )
        self.lineage.append(event)
        if self._on_exploit is not None:
            self._on_exploit(event)


class LineagePBT(_LineageMixin, PopulationBasedTraining):
    """Ray's ``PopulationBasedTraining`` with exploit events and no perturbation at ``max_t``."""


class LineagePB2(_LineageMixin, PB2):
    """Ray's ``PB2`` (GP-bandit explore) with exploit events and no perturbation at ``max_t``."""


def build_population_scheduler(name: str, *, domains: Mapping[str, Any], perturbable: tuple[str, ...], max_t: int,
                               perturbation_interval: int, quantile_fraction: float, resample_probability: float,
                               metric: str | None, mode: str | None, synch: bool = False,
                               on_exploit: ExploitListener | None = None):
    """A ``LineagePBT`` (``name="pbt"``) or ``LineagePB2`` (``"pb2"``) whose time is the epoch
    (``training_iteration``), perturbing the searched settings ``mutated_keys`` picks from ``domains``.

    Raises:
        ValueError: No searched setting can be perturbed.
    """
    keys = mutated_keys(name, domains, perturbable)
    if not keys:
        raise ValueError(f"{name} has no searched setting to perturb (perturbable: {', '.join(perturbable)})")
    common: dict[str, Any] = dict(
        time_attr="training_iteration", metric=metric, mode=mode, perturbation_interval=perturbation_interval,
        quantile_fraction=quantile_fraction, synch=synch,
        custom_explore_fn=ClipToSpace(domains=domains, keys=keys),
        log_config=True,  # Ray's pbt_global.txt / pbt_policy_*.txt too, for PopulationBasedTrainingReplay users
    )
    if name == PBT:
        scheduler = LineagePBT(hyperparam_mutations=pbt_mutations(domains, keys),
                               resample_probability=resample_probability, **common)
    else:
        scheduler = LineagePB2(hyperparam_bounds=pb2_bounds(domains, keys), **common)
    scheduler._init_lineage(max_t=max_t, on_exploit=on_exploit)
    return scheduler
