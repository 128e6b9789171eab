"""Population-based training: Ray Tune's PBT and PB2, with mutations from the search space and a lineage hook.

``pbt`` (``ray.tune.schedulers.PopulationBasedTraining``, Jaderberg et al. 2017) and ``pb2``
(``ray.tune.schedulers.pb2.PB2``, Parker-Holder et al. 2020: a GP bandit chooses the new values) train every trial
of the search as one population. Every ``perturbation_interval`` epochs a trial in the bottom ``quantile_fraction``
copies the checkpoint of one in the top fraction (exploit) and continues from it with perturbed hyperparameters
(explore).

What may be perturbed (:func:`mutated_keys`): the searched settings a resumed training applies to the checkpoint
it loads (the task's ``perturbable`` settings, e.g. learning rates); pb2 only those searched as a numeric range
(its GP needs continuous bounds). Every other searched setting (architecture keys, ``choice`` settings under pb2)
is drawn once per trial and then travels with the weights: an exploiting trial takes the copied trial's value.

Mutations come from the spec's space (:func:`pbt_mutations`, :func:`pb2_bounds`): a range is resampled from its
domain or multiplied by 0.8 / 1.2 and then clipped (and rounded, for integers and quantized ranges) back into its
bounds (:class:`ClipToSpace`); a ``choice`` is a list PBT shifts to a neighbouring value or resamples.

:class:`ExploitEvent` is what ``search/population_schedulers.py``'s schedulers report each time a trial copies
another. This module imports Ray only inside its functions: the spec schema reads it at parse time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

PBT, PB2 = "pbt", "pb2"
POPULATION_SCHEDULERS = (PBT, PB2)
# PB2's GP needs a numeric interval; PBT also shifts a choice's values.
_MUTABLE_KINDS = {PBT: ("float", "int", "ordinal", "categorical"), PB2: ("float", "int")}


@dataclass(frozen=True)
class ExploitEvent:
    """One exploit: ``trial_id`` stopped at ``epoch`` and continues from ``source_trial_id``'s checkpoint of
    ``source_epoch`` (its next epoch is ``source_epoch + 1``) with ``new`` values of the mutated settings.

    ``previous``: the trial's own values before; ``copied``: the source trial's values; ``operations``: what PBT did
    to each (``* 1.2``, ``resample``, ``shift left``; empty under pb2).
    """

    trial_id: str
    source_trial_id: str
    epoch: int
    source_epoch: int
    previous: dict[str, Any]
    copied: dict[str, Any]
    new: dict[str, Any]
    operations: dict[str, str] = field(default_factory=dict)
    time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "source_trial_id": self.source_trial_id, "epoch": self.epoch,
                "source_epoch": self.source_epoch, "previous": self.previous, "copied": self.copied,
                "new": self.new, "operations": self.operations, "time": self.time}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExploitEvent":
        return cls(trial_id=str(data["trial_id"]), source_trial_id=str(data["source_trial_id"]),
                   epoch=int(data["epoch"]), source_epoch=int(data["source_epoch"]),
                   previous=dict(data.get("previous", {})), copied=dict(data.get("copied", {})),
                   new=dict(data.get("new", {})), operations=dict(data.get("operations", {})),
                   time=float(data.get("time", 0.0)))


def mutated_keys(scheduler: str, domains: Mapping[str, Any], perturbable: tuple[str, ...]) -> tuple[str, ...]:
    """The searched settings ``scheduler`` perturbs: top-level domains in ``perturbable``, of a kind it can
    mutate (pb2: numeric ranges only); in the space's order."""
    params = _params(domains)
    kinds = _MUTABLE_KINDS[scheduler]
    return tuple(name for name, param in params.items() if name in perturbable and param.kind in kinds)


def pbt_mutations(domains: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``hyperparam_mutations`` for PBT: a range's Ray domain (resampled, or scaled by a perturbation factor), a
    choice's values as a list (Ray would scale a ``tune.choice`` domain as if it were continuous)."""
    params = _params(domains)
    return {key: list(params[key].values) if params[key].kind in ("ordinal", "categorical") else domains[key]
            for key in keys}


def pb2_bounds(domains: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, list[float]]:
    """``hyperparam_bounds`` for PB2: each range's inclusive ``[lower, upper]`` (searched on a linear scale: Ray's
    PB2 has no log scale, so a loguniform range is explored uniformly between its bounds)."""
    params = _params(domains)
    return {key: [params[key].lower, params[key].upper] for key in keys}


def _params(domains: Mapping[str, Any]) -> dict:
    from ray.tune.search.sample import Domain

    from mritune.search.space_ray import convert_ray_space

    searched = {key: value for key, value in domains.items() if isinstance(value, Domain)}
    if not searched:
        return {}
    return {param.name: param for param in convert_ray_space(searched).params}


class ClipToSpace:
    """PBT's ``custom_explore_fn``: a perturbed value back into its range's bounds, integers and quantized ranges
    rounded to their grid (Ray's factors 0.8 / 1.2 know nothing of the bounds). Picklable: Tune saves schedulers."""

    def __init__(self, *, domains: Mapping[str, Any], keys: tuple[str, ...]):
        params = _params(domains)
        self._ranges = {key: params[key] for key in keys if params[key].kind in ("float", "int")}

    def __call__(self, config: dict) -> dict:
        for key, param in self._ranges.items():
            if key in config:
                config[key] = _clip(param, config[key])
        return config


def _clip(param, value: Any) -> Any:
    number = min(max(float(value), param.lower), param.upper)
    if param.q:
        number = min(max(round(number / param.q) * param.q, math.ceil(param.lower / param.q - 1e-9) * param.q),
                     math.floor(param.upper / param.q + 1e-9) * param.q)
    return int(round(number)) if param.kind == "int" else float(number)
