"""Build searchers and schedulers by name, as the platform's search spec names them.

``build_searcher("gpyopt" | "bayesopt" | "random" | "tpe" | "mobster", metric=..., mode=..., seed=...,
max_concurrent=..., **options)`` and ``build_scheduler("asha" | "fifo" | "pbt" | "pb2", max_t=..., **settings)``.
Unknown names or options raise ``ValueError`` naming them and listing what is accepted. ``SCHEDULER_KINDS`` says
per scheduler which settings it reads and which searchers it combines with; the spec schema checks both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from mritune.search.options import (ACQUISITIONS, BAYESOPT_PENDING, MOBSTER_MODELS, MODEL_FITS, PENDING_STRATEGIES,
                                    TARGET_TRANSFORMS, Option, option_problem)

# name -> (module, class): one registry that the spec schema, the factory and the docs read.
_SEARCHER_CLASSES = {
    "gpyopt": ("mritune.search.gpyopt_searcher", "GPyOptSearch"),
    "bayesopt": ("mritune.search.bayesopt_searcher", "BayesOptSearch"),
    "random": ("mritune.search.random_searcher", "RandomSearch"),
    "tpe": ("mritune.search.optuna_searcher", "TPESearch"),  # Optuna TPE through Ray's OptunaSearch (peer baseline)
    "mobster": ("mritune.search.mobster_searcher", "MobsterSearch"),  # multi-fidelity BO over ASHA's rungs
}
# name -> the options a spec may give it (search.options), checked at parse time without importing the searcher.
# Keep in step with the constructors' keywords (tests/search/test_factory.py compares them).
_COUNT = Option(minimum=1)
# How a GP searcher bounds its cost at many observations (search/fit_subset.py, search/model_fit.py).
_SCALE_OPTIONS = {"max_fit_points": Option(minimum=10, nullable=True), "model_fit": Option(choices=MODEL_FITS)}
SEARCHER_OPTIONS: dict[str, dict[str, Option]] = {
    "gpyopt": {"n_initial_points": _COUNT, "acquisition": Option(choices=ACQUISITIONS),
               "pending_strategy": Option(choices=PENDING_STRATEGIES),
               "target_transform": Option(choices=TARGET_TRANSFORMS), "blas_threads": Option(nullable=True),
               **_SCALE_OPTIONS},
    "bayesopt": {"n_initial_points": _COUNT, "acquisition": Option(choices=ACQUISITIONS),
                 "pending_strategy": Option(choices=BAYESOPT_PENDING), "blas_threads": Option(nullable=True),
                 **_SCALE_OPTIONS},
    "random": {"n_initial_points": _COUNT, "blas_threads": Option(nullable=True)},
    "tpe": {"n_initial_points": _COUNT},
    "mobster": {"n_initial_points": _COUNT, "model": Option(choices=MOBSTER_MODELS), "refit_every": _COUNT,
                "max_fit_points": Option(minimum=10), "blas_threads": Option(nullable=True),
                "model_fit": Option(choices=MODEL_FITS)},
}
# ASHA's settings, which a multi-fidelity searcher takes from the scheduler section (never from search.options):
# searcher name -> it takes them. The runner passes them through with_scheduler_settings.
RUNG_SETTINGS = ("max_t", "grace_period", "reduction_factor")
_TAKES_RUNG_SETTINGS = {"mobster"}
SEARCHERS = tuple(_SEARCHER_CLASSES)


@dataclass(frozen=True)
class SchedulerKind:
    """What the spec may combine with one scheduler.

    Attributes:
        settings: The spec's ``scheduler`` keys it reads besides ``name`` and ``max_t`` (others are refused).
        searchers: The ``search.algorithm`` values it works with; None: every registered searcher.
        searcher_rule: Why only those (the spec's one-line error says it).
        population: Trials copy each other's checkpoints (PBT, PB2): the trials are drawn by Ray's basic variant
            generator, the task's ``perturbable`` settings are mutated, re-runs replay a trial's schedule.
        ignores: Other schedulers' settings it accepts and ignores (fifo: asha's, as it always has).
    """

    settings: tuple[str, ...]
    ignores: tuple[str, ...] = ()
    searchers: tuple[str, ...] | None = None
    searcher_rule: str = ""
    population: bool = False


# Ray 2.x's PopulationBasedTraining.on_trial_add raises for any search algorithm that is a SearchGenerator (every
# Searcher is wrapped in one, ConcurrencyLimiter included); only its BasicVariantGenerator, random sampling of the
# space, may feed it. mritune's "random" is then that generator, seeded with search.seed.
_POPULATION_RULE = ("Ray's PopulationBasedTraining refuses every search algorithm but its basic variant generator, "
                    "random sampling")
_POPULATION_SETTINGS = ("perturbation_interval", "quantile_fraction", "synch")
SCHEDULER_KINDS: dict[str, SchedulerKind] = {
    "asha": SchedulerKind(settings=("grace_period", "reduction_factor")),
    "fifo": SchedulerKind(settings=(), ignores=("grace_period", "reduction_factor")),
    "pbt": SchedulerKind(settings=(*_POPULATION_SETTINGS, "resample_probability"), searchers=("random",),
                         searcher_rule=_POPULATION_RULE, population=True),
    "pb2": SchedulerKind(settings=_POPULATION_SETTINGS, searchers=("random",), searcher_rule=_POPULATION_RULE,
                         population=True),
}
SCHEDULERS = tuple(SCHEDULER_KINDS)
# Each setting's default (perturbation_interval None: a quarter of max_t); _setting_problem holds their rules.
SCHEDULER_DEFAULTS: dict[str, Any] = {"grace_period": 1, "reduction_factor": 3.0, "perturbation_interval": None,
                                      "quantile_fraction": 0.25, "resample_probability": 0.25, "synch": False}


def _searcher_class(name: str):
    import importlib

    module, cls = _SEARCHER_CLASSES[name]
    return getattr(importlib.import_module(module), cls)


def searcher_options(name: str) -> tuple[str, ...]:
    """The extra options a searcher accepts (beyond metric, mode, seed, max_concurrent, points_to_evaluate)."""
    if name not in SEARCHERS:
        raise ValueError(f"unknown searcher {name!r}; expected one of {', '.join(SEARCHERS)}")
    return tuple(SEARCHER_OPTIONS[name])


def check_searcher_options(name: str, options: dict[str, Any]) -> None:
    """Raise ``ValueError`` (``"<option>: <problem>"``) for an unknown searcher, option or option value.

    Cheap: reads the declared options only, so the spec schema calls it before anything starts.
    """
    searcher_options(name)
    problem = option_problem(name, SEARCHER_OPTIONS[name], options)
    if problem:
        raise ValueError(problem)


def scheduler_kind(name: str) -> SchedulerKind:
    """The registered scheduler ``name``; ``ValueError`` listing the registered ones otherwise."""
    if name not in SCHEDULER_KINDS:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {', '.join(SCHEDULERS)}")
    return SCHEDULER_KINDS[name]


def perturbation_interval_or_default(value: int | None, *, max_t: int) -> int:
    """The epochs between perturbations: ``value``, else a quarter of ``max_t`` (at least 1)."""
    return value if value is not None else max(1, max_t // 4)


def _setting_problem(key: str, value: Any, max_t: int) -> str | None:
    if key == "grace_period" and (not isinstance(value, int) or not 1 <= value <= max_t):
        return f"must be an integer in [1, max_t={max_t}], got {value!r}"
    if key == "reduction_factor" and not value > 1:
        return f"must be > 1, got {value!r}"
    if key == "perturbation_interval" and value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < max_t):
        return (f"must be a whole number of epochs in [1, max_t - 1 = {max_t - 1}] (a perturbation needs an "
                f"epoch after it to train), got {value!r}")
    if key == "quantile_fraction" and not 0 < value <= 0.5:
        return f"must be in (0, 0.5] (the share of trials that copy, and that are copied), got {value!r}"
    if key == "resample_probability" and not 0 <= value <= 1:
        return f"must be a probability in [0, 1], got {value!r}"
    if key == "synch" and not isinstance(value, bool):
        return f"must be true or false, got {value!r}"
    return None


def check_scheduler_settings(name: str, *, max_t: int, **settings: Any) -> None:
    """Raise ``ValueError`` (``"<setting>: <problem>"``) for settings ``build_scheduler`` would refuse (checked at
    spec parse time too). Settings the scheduler does not read are not checked here (the spec refuses them)."""
    kind = scheduler_kind(name)
    if not isinstance(max_t, int) or max_t < 1:
        raise ValueError(f"max_t: must be a positive integer (epochs), got {max_t!r}")
    if kind.population and max_t < 2:
        raise ValueError(f"max_t: {name} needs at least 2 epochs (a perturbation and an epoch after it), got {max_t}")
    for key in kind.settings:
        problem = _setting_problem(key, settings.get(key, SCHEDULER_DEFAULTS[key]), max_t)
        if problem:
            raise ValueError(f"{key}: {problem}")


def check_searcher_for_scheduler(scheduler: str, searcher: str) -> None:
    """Raise ``ValueError`` when ``scheduler`` cannot be combined with ``searcher`` (the reason in one line)."""
    kind = scheduler_kind(scheduler)
    if kind.searchers is not None and searcher not in kind.searchers:
        allowed = " or ".join(kind.searchers)
        raise ValueError(f"{scheduler} combines only with {allowed} ({kind.searcher_rule}), not {searcher!r}")


def with_scheduler_settings(name: str, options: dict[str, Any], *, max_t: int, grace_period: int,
                            reduction_factor: float) -> dict[str, Any]:
    """``options`` plus the scheduler's rung settings when searcher ``name`` takes them (``mobster``), else as is.

    Raises:
        ValueError: ``options`` sets one of them itself (the scheduler's settings are the only source).

    Example:
        >>> with_scheduler_settings("mobster", {}, max_t=9, grace_period=1, reduction_factor=3)
        {'max_t': 9, 'grace_period': 1, 'reduction_factor': 3}
    """
    searcher_options(name)
    if name not in _TAKES_RUNG_SETTINGS:
        return dict(options)
    clash = sorted(set(options) & set(RUNG_SETTINGS))
    if clash:
        raise ValueError(f"search.options.{clash[0]} is taken from the scheduler section for searcher {name!r}; "
                         "remove it from search.options")
    return {**options, "max_t": max_t, "grace_period": grace_period, "reduction_factor": reduction_factor}


def build_searcher(name: str, *, metric: str, mode: str, seed: int | None = None,
                   max_concurrent: int | None = None, points_to_evaluate: list[dict] | None = None,
                   **options: Any):
    """A configured Tune searcher; wrapped in ``ConcurrencyLimiter`` when ``max_concurrent`` is set.

    The search space comes later from ``Tuner(param_space=...)``. Always returns a Searcher (``random`` included,
    so every search has an observations view and resumable state).

    Args:
        name: A registered searcher: ``"gpyopt"``, ``"bayesopt"``, ``"random"``, ``"tpe"`` or ``"mobster"``.
        metric: The result key to optimize.
        mode: ``"min"`` or ``"max"``.
        seed: The searcher's random seed (its ``random_state_seed``); None: unseeded.
        max_concurrent: At most this many trials running at once; None: no limit.
        points_to_evaluate: Configs to try first.
        **options: The searcher's own options (``searcher_options(name)`` lists them), e.g.
            ``pending_strategy="constant_liar"`` for gpyopt; ``max_t``, ``grace_period`` and
            ``reduction_factor`` (the ASHA scheduler's) for mobster.

    Raises:
        ValueError: An unknown searcher or option (the message lists what is accepted), ``mode`` other than
            min/max, ``max_concurrent`` not a positive integer, or a bad option value.

    Example:
        >>> searcher = build_searcher("gpyopt", metric="val_macro_f1", mode="max", seed=0, max_concurrent=4,
        ...                           pending_strategy="kriging_believer")
        >>> tuner = Tuner(trainable, param_space=space, tune_config=TuneConfig(search_alg=searcher))  # doctest: +SKIP
    """
    spec_options = options
    if name in _TAKES_RUNG_SETTINGS:  # its ASHA settings are build_searcher's to pass, not a spec's
        spec_options = {k: v for k, v in options.items() if k not in RUNG_SETTINGS}
    check_searcher_options(name, spec_options)
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if max_concurrent is not None and (not isinstance(max_concurrent, int) or max_concurrent < 1):
        raise ValueError(f"max_concurrent must be a positive integer, got {max_concurrent!r}")
    searcher = _searcher_class(name)(metric=metric, mode=mode, random_state_seed=seed,
                                     points_to_evaluate=points_to_evaluate, **options)
    if max_concurrent is None:
        return searcher
    from ray.tune.search import ConcurrencyLimiter

    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def build_variant_generator(*, seed: int | None, max_concurrent: int | None = None,
                            points_to_evaluate: list[dict] | None = None):
    """Ray's ``BasicVariantGenerator``: random samples of the space (seeded), the search algorithm PBT and PB2
    accept (``SchedulerKind.population``)."""
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent or 0,
                                 points_to_evaluate=points_to_evaluate)


def first_variant(space: dict, *, seed: int | None, points_to_evaluate: list[dict] | None = None) -> dict:
    """The first config ``build_variant_generator(seed=seed, ...)`` gives a Tuner with ``space`` (the dry run's)."""
    from ray.tune.search.variant_generator import generate_variants

    if points_to_evaluate:
        return {**space, **points_to_evaluate[0]}
    import numpy as np

    _, config = next(generate_variants({"config": space}, random_state=np.random.RandomState(seed)))
    return config["config"]


def build_scheduler(name: str, *, max_t: int, grace_period: int = 1, reduction_factor: float = 3,
                    metric: str | None = None, mode: str | None = None, perturbation_interval: int | None = None,
                    quantile_fraction: float = 0.25, resample_probability: float = 0.25, synch: bool = False,
                    domains: dict | None = None, perturbable: tuple[str, ...] = (),
                    on_exploit: Callable | None = None):
    """``asha`` (ray.tune.schedulers.ASHAScheduler), ``fifo``, ``pbt`` or ``pb2`` (``search/population.py``);
    metric/mode may be left to TuneConfig.

    ``pbt``/``pb2`` also take the searched ``domains`` (the Tuner's param_space), the task's ``perturbable``
    settings and ``on_exploit`` (called with each ``population.ExploitEvent``); ``perturbation_interval`` None is
    a quarter of ``max_t``; ``synch`` Ray's synchronous PBT (every trial compared at the same epoch).
    """
    settings = {"grace_period": grace_period, "reduction_factor": reduction_factor,
                "perturbation_interval": perturbation_interval, "quantile_fraction": quantile_fraction,
                "resample_probability": resample_probability, "synch": synch}
    check_scheduler_settings(name, max_t=max_t, **settings)
    if mode not in (None, "min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if name == "fifo":
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()
    if SCHEDULER_KINDS[name].population:
        from mritune.search.population_schedulers import build_population_scheduler

        return build_population_scheduler(
            name, domains=domains or {}, perturbable=perturbable, max_t=max_t,
            perturbation_interval=perturbation_interval_or_default(perturbation_interval, max_t=max_t),
            quantile_fraction=quantile_fraction, resample_probability=resample_probability, synch=synch,
            metric=metric, mode=mode, on_exploit=on_exploit)
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t,
                         grace_period=grace_period, reduction_factor=reduction_factor)
