"""What the re-runs found, and the choice made from it: plain frozen records and pure functions, no Ray, no MLflow.

The re-runs (``platform/registry/rerun.py``) train the search's k best configurations again from scratch on n new seeds.
From their results:

- the configuration registered is the one with the best *mean validation* score over its re-runs (``choose``;
  selection never looks at the test split; a configuration with a failed re-run is not chosen, ties go to the
  better-ranked trial);
- it is registered as its re-run whose validation score is closest to that mean (``closest_to_mean``);
- every configuration's test scores get a bootstrap 95% interval over seeds x test images
  (``platform/registry/intervals.py``); the chosen one's goes onto the registered version and into the gate;
- the winner's curse is the search's best validation score against its re-runs' mean (``WinnersCurse``).

``RerunSummary.to_dict`` is the versioned JSON logged on the search's parent run (``rerun/summary.json``), which
the console, the run description and the search report read back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from mritune.platform.registry.promotion import Interval
from mritune.platform.tracking.tags import metric_tag

FORMAT_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class RerunResult:
    """One configuration trained once more from scratch on one seed, to its trial's best epoch."""

    trial_id: str  # the search trial whose configuration this is
    seed: int
    epoch: int  # epochs trained (the trial's best epoch)
    val: float | None  # the search metric at that epoch, on the validation split
    test: float | None  # the gate metric on the test split (all of it)
    metrics: dict[str, float] = field(default_factory=dict)  # that epoch's reported metrics and the test metrics
    # The gate metric on the search's shared test-image resamples; used for the interval, not kept in the JSON.
    resampled: tuple[float, ...] = ()
    checkpoint: str | None = None  # where its checkpoint folder was stored (a local folder or a URI)
    seconds: float = 0.0
    error: str | None = None  # why it produced no score (diverged on this seed, worker lost)

    @property
    def ok(self) -> bool:
        return self.error is None and _finite(self.val) and _finite(self.test)


@dataclass(frozen=True, kw_only=True)
class ConfigReruns:
    """The re-runs of one of the search's best configurations."""

    rank: int  # its trial's place in the search's ranking, from 1
    trial_id: str
    trial_value: float  # the trial's own best validation score in the search
    epoch: int
    searched: dict[str, Any]  # the searched hyperparameters' values
    results: tuple[RerunResult, ...]
    # Its test scores' mean and 95% interval; None if a re-run failed (or the task has no test resampler).
    interval: Interval | None = None

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(result.ok for result in self.results)

    @property
    def val_mean(self) -> float | None:
        return _mean([r.val for r in self.results]) if self.ok else None

    @property
    def test_mean(self) -> float | None:
        return _mean([r.test for r in self.results]) if self.ok else None


@dataclass(frozen=True, kw_only=True)
class WinnersCurse:
    """How much the search's best validation score flattered its configuration (positive: it did)."""

    trial_id: str
    best_val: float  # the search's best trial's validation score
    rerun_val_mean: float  # the same configuration's mean validation score over its re-runs
    rerun_test_mean: float  # and its mean test score
    val_gap: float  # best_val - rerun_val_mean, signed so that positive means optimistic (also for a min metric)
    test_gap: float  # best_val - rerun_test_mean, signed the same way


@dataclass(frozen=True, kw_only=True)
class RerunSummary:
    metric: str  # the search metric (validation), which chooses
    mode: str
    gate_metric: str  # the test metric, which the interval and the gate are about
    gate_mode: str
    top_k: int
    seeds: tuple[int, ...]
    n_test_images: int
    image_resamples: int  # the shared test-image resamples behind each interval
    configs: tuple[ConfigReruns, ...]  # best-ranked first
    chosen: int | None  # index into configs of the configuration registered; None: every one had a failed re-run
    registered_seed: int | None
    seconds: float  # wall time of all the re-runs
    decision: dict[str, Any] | None = None  # the gate's decision with both intervals (``decision_record``)

    @property
    def chosen_config(self) -> ConfigReruns | None:
        return None if self.chosen is None else self.configs[self.chosen]

    @property
    def registered(self) -> RerunResult | None:
        config = self.chosen_config
        return None if config is None else next(r for r in config.results if r.seed == self.registered_seed)

    @property
    def interval(self) -> Interval | None:
        config = self.chosen_config
        return None if config is None else config.interval

    @property
    def changed_winner(self) -> bool:
        """Whether the re-runs registered another configuration than the search's best trial."""
        return self.chosen is not None and self.configs[self.chosen].rank != self.configs[0].rank

    def winners_curse(self) -> WinnersCurse | None:
        """The search's best trial against its own re-runs; None if one of them failed."""
        best = self.configs[0]
        if not best.ok:
            return None
        sign = 1.0 if self.mode == "max" else -1.0
        return WinnersCurse(trial_id=best.trial_id, best_val=best.trial_value, rerun_val_mean=best.val_mean,
                            rerun_test_mean=best.test_mean, val_gap=sign * (best.trial_value - best.val_mean),
                            test_gap=sign * (best.trial_value - best.test_mean))

    def with_decision(self, decision: dict[str, Any]) -> "RerunSummary":
        return replace(self, decision=decision)

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form (``rerun/summary.json`` on the parent run)."""
        out = {key: getattr(self, key) for key in ("metric", "mode", "gate_metric", "gate_mode", "top_k",
                                                    "n_test_images", "image_resamples", "chosen",
                                                    "registered_seed", "seconds", "decision")}
        out["configs"] = [_config_dict(config) for config in self.configs]
        return {"format_version": FORMAT_VERSION, **out, "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RerunSummary":
        """Read ``to_dict``'s form back.

        Raises:
            ValueError: Another format version (written by a newer mritune).
        """
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"re-run summary format {data.get('format_version')!r} is not {FORMAT_VERSION}")
        configs = tuple(_config_from_dict(config) for config in data["configs"])
        fields = {key: data[key] for key in ("metric", "mode", "gate_metric", "gate_mode", "top_k", "n_test_images",
                                             "image_resamples", "chosen", "registered_seed", "seconds", "decision")}
        return cls(**fields, seeds=tuple(data["seeds"]), configs=configs)


def choose(configs: Sequence[ConfigReruns], *, mode: str) -> int | None:
    """Index of the configuration with the best mean validation score over its re-runs (ties: the better-ranked
    trial); configurations with a failed re-run are not chosen. None when every one has one."""
    candidates = [(index, config.val_mean) for index, config in enumerate(configs) if config.ok]
    if not candidates:
        return None
    sign = -1.0 if mode == "max" else 1.0
    return min(candidates, key=lambda item: (sign * item[1], configs[item[0]].rank))[0]


def closest_to_mean(config: ConfigReruns) -> RerunResult:
    """The re-run whose validation score is closest to the configuration's mean (ties: the earlier seed).

    Raises:
        ValueError: The configuration has a failed re-run (it has no mean).
    """
    mean = config.val_mean
    if mean is None:
        raise ValueError(f"trial {config.trial_id}'s re-runs have no mean: one failed")
    return min(config.results, key=lambda result: abs(result.val - mean))


def summarise(*, configs: Sequence[ConfigReruns], metric: str, mode: str, gate_metric: str, gate_mode: str,
              seeds: Sequence[int], n_test_images: int, image_resamples: int, seconds: float,
              bootstrap_seed: int = 0) -> RerunSummary:
    """Intervals for every configuration whose re-runs all scored, the choice, and the re-run to register."""
    from mritune.platform.registry.intervals import bootstrap_interval

    with_intervals = tuple(
        replace(config, interval=bootstrap_interval([r.test for r in config.results],
                                                    [r.resampled for r in config.results], seed=bootstrap_seed))
        if config.ok and all(r.resampled for r in config.results) else config
        for config in configs
    )
    chosen = choose(with_intervals, mode=mode)
    registered = None if chosen is None else closest_to_mean(with_intervals[chosen]).seed
    return RerunSummary(metric=metric, mode=mode, gate_metric=gate_metric, gate_mode=gate_mode, top_k=len(configs),
                        seeds=tuple(seeds), n_test_images=n_test_images, image_resamples=image_resamples,
                        configs=with_intervals, chosen=chosen, registered_seed=registered, seconds=seconds)


def decision_record(*, version: str, alias: str, reason: str, rule: str, value: float, interval: Interval | None,
                    champion_version: str | None, champion_tags: dict | None, gate_metric: str) -> dict[str, Any]:
    """The gate's decision with both sides' numbers, as the summary JSON, the console and the report show it."""
    champion = None
    if champion_version is not None:
        tags = champion_tags or {}
        single = tags.get(metric_tag(gate_metric))
        champion_interval = Interval.from_tags(tags)
        champion = {"version": champion_version, "value": float(single) if single is not None else None,
                    "interval": _interval_dict(champion_interval)}
    return {"version": version, "alias": alias, "reason": reason, "rule": rule,
            "challenger": {"value": value, "interval": _interval_dict(interval)}, "champion": champion}


def interval_from_dict(data: dict | None) -> Interval | None:
    return None if data is None else Interval(mean=data["mean"], low=data["low"], high=data["high"])


def _interval_dict(interval: Interval | None) -> dict | None:
    return None if interval is None else {"mean": interval.mean, "low": interval.low, "high": interval.high}


def _config_dict(config: ConfigReruns) -> dict[str, Any]:
    results = [{key: getattr(r, key) for key in ("seed", "epoch", "val", "test", "metrics", "checkpoint", "seconds",
                                                 "error")} for r in config.results]
    return {"rank": config.rank, "trial_id": config.trial_id, "trial_value": config.trial_value,
            "epoch": config.epoch, "searched": config.searched, "interval": _interval_dict(config.interval),
            "results": results}


def _config_from_dict(data: dict[str, Any]) -> ConfigReruns:
    results = tuple(RerunResult(trial_id=data["trial_id"], **r) for r in data["results"])
    return ConfigReruns(rank=data["rank"], trial_id=data["trial_id"], trial_value=data["trial_value"],
                        epoch=data["epoch"], searched=data["searched"], results=results,
                        interval=interval_from_dict(data["interval"]))


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values))
