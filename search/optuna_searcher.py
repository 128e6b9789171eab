"""Optuna's TPE through Ray's own ``OptunaSearch``: the peer a Ray Tune user would reach for, as ``algorithm: tpe``.

mritune adds nothing to the algorithm (``restrict_to`` only narrows where it may land, for tabulated
benchmarks); this module maps the factory's keywords (``random_state_seed``,
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
        self._param_space: dict | None = None
        self._allowed: list[dict] | None = None  # restrict_to's configurations
        self._allowed_units = None  # (configs, dim) array: the same in mritune's unit cube
        self._taken_units: list = []  # each suggested configuration in the unit cube

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        applied = super().set_search_properties(metric, mode, config, **spec)
        if applied:
            self._param_space = config
        return applied

    def restrict_to(self, configs: list[dict]) -> None:
        """Suggest only these configurations, each once before any is suggested again (see
        ``UnitCubeSearcher.restrict_to``): TPE's proposal becomes the nearest free one in mritune's unit cube.

        TPE's own proposal is told to Optuna as a failed trial (TPE learns only from completed and pruned trials)
        and the chosen configuration is enqueued and asked for, so Optuna records the configuration that ran.

        Raises:
            ValueError: No search space yet (call it after ``set_search_properties``) or an empty list.
        """
        if self._param_space is None:
            raise ValueError("TPESearch: no search space yet; call restrict_to after set_search_properties")
        if not configs:
            raise ValueError("restrict_to needs at least one configuration")
        from mritune.search.space_ray import convert_ray_space

        import numpy as np

        self._unit_space = convert_ray_space(self._param_space)
        self._allowed = [dict(config) for config in configs]
        self._allowed_units = np.vstack([self._unit_space.encode(config) for config in self._allowed])

    def suggest(self, trial_id: str) -> dict | None:
        if self._allowed is not None and trial_id not in self._ot_trials:
            self._ot_trials[trial_id] = self._restricted_trial()
        config = super().suggest(trial_id)
        if self._allowed is not None and config is not None:
            self._taken_units.append(self._unit_space.encode(config))
        return config

    def _restricted_trial(self):
        import numpy as np
        from optuna.trial import TrialState
        from ray.tune.utils.util import flatten_dict, unflatten_dict

        waiting = self._ot_study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        probe = self._ot_study.ask(fixed_distributions=self._space)
        if waiting:  # an enqueued point to evaluate: it runs as given
            return probe
        allowed, free = self._allowed_units, np.arange(len(self._allowed))
        if self._taken_units:  # vectorised: a replay of hundreds of trials asks this once per trial
            taken = np.vstack(self._taken_units)
            distance = np.abs(allowed[:, None, :] - taken[None, :, :]).max(axis=2).min(axis=1)
            free = np.flatnonzero(distance > 1e-9)
            if not len(free):  # every configuration ran: any may run again
                free = np.arange(len(self._allowed))
        wanted = self._unit_space.encode(unflatten_dict(probe.params))
        chosen = self._allowed[int(free[np.argmin(np.linalg.norm(allowed[free] - wanted, axis=1))])]
        self._ot_study.tell(probe, state=TrialState.FAIL)
        self._ot_study.enqueue_trial(flatten_dict(chosen))
        return self._ot_study.ask(fixed_distributions=self._space)
