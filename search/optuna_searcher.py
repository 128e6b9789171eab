"""Optuna's TPE through Ray's own ``OptunaSearch``: the peer a Ray Tune user would reach for, as ``algorithm: tpe``.

mritune adds nothing to the algorithm; this module only maps the factory's keywords (``random_state_seed``,
``n_initial_points``) onto Ray's adapter and an Optuna ``TPESampler``, so that benchmarks and users compare
GPyOpt with TPE through the same platform. Its state is Ray's (a pickled Optuna study, saved by Ray with the
experiment): mritune's JSON observations view is not available for it.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search.optuna import OptunaSearch


class TPESearch(OptunaSearch):
    """Optuna's TPE sampler behind Ray's ``OptunaSearch``.

    Args:
        metric: the result key to optimise (e.g. ``"val_macro_f1"``); may be left to ``TuneConfig``.
        mode: ``"min"`` or ``"max"``.
        random_state_seed: seed of the TPE sampler (the same spec and seed give the same first suggestions).
        points_to_evaluate: configurations to try first, as in every Ray searcher.
        n_initial_points: random suggestions before TPE models the results (Optuna's ``n_startup_trials``).

    Raises:
        ImportError: optuna is not installed (``pip install 'mritune[bench]'`` or ``pip install optuna``).
        ValueError: ``n_initial_points`` is not a positive integer.

    Example:
        >>> from mritune.search.factory import build_searcher
        >>> searcher = build_searcher("tpe", metric="val_macro_f1", mode="max", seed=0, n_initial_points=4)
    """

    def __init__(self, *, metric: str | None = None, mode: str | None = None, random_state_seed: int | None = None,
                 points_to_evaluate: list[dict[str, Any]] | None = None, n_initial_points: int = 4) -> None:
        if not isinstance(n_initial_points, int) or isinstance(n_initial_points, bool) or n_initial_points < 1:
            raise ValueError(f"n_initial_points must be a positive integer, got {n_initial_points!r}")
        try:
            import optuna
        except ImportError as exc:
            raise ImportError("algorithm tpe needs optuna: pip install 'mritune[bench]'") from exc
        sampler = optuna.samplers.TPESampler(seed=random_state_seed, n_startup_trials=n_initial_points)
        super().__init__(metric=metric, mode=mode, points_to_evaluate=points_to_evaluate, sampler=sampler)
