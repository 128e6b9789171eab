"""Build searchers and schedulers by name, as the platform's search spec names them.

``build_searcher("gpyopt" | "bayesopt" | "random" | "tpe" | "mobster", metric=..., mode=..., seed=...,
max_concurrent=..., **options)`` and ``build_scheduler("asha" | "fifo", max_t=..., grace_period=..., reduction_factor=...)``.
Unknown names or options raise ``ValueError`` naming them and listing what is accepted.
"""

from __future__ import annotations

from typing import Any

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
SCHEDULERS = ("asha", "fifo")


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


def check_scheduler_settings(name: str, *, max_t: int, grace_period: int = 1, reduction_factor: float = 3) -> None:
    """Raise ``ValueError`` for settings ``build_scheduler`` would refuse (checked at spec parse time too)."""
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {', '.join(SCHEDULERS)}")
    if not isinstance(max_t, int) or max_t < 1:
        raise ValueError(f"max_t: must be a positive integer (epochs), got {max_t!r}")
    if name == "fifo":
        return
    if not isinstance(grace_period, int) or not 1 <= grace_period <= max_t:
        raise ValueError(f"grace_period: must be an integer in [1, max_t={max_t}], got {grace_period!r}")
    if not reduction_factor > 1:
        raise ValueError(f"reduction_factor: must be > 1, got {reduction_factor!r}")


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


def build_scheduler(name: str, *, max_t: int, grace_period: int = 1, reduction_factor: float = 3,
                    metric: str | None = None, mode: str | None = None):
    """``asha`` (ray.tune.schedulers.ASHAScheduler) or ``fifo``; metric/mode may be left to TuneConfig."""
    check_scheduler_settings(name, max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor)
    if name == "fifo":
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()
    if mode not in (None, "min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t,
                         grace_period=grace_period, reduction_factor=reduction_factor)
