"""MobsterSearch: multi-fidelity Bayesian optimization for Ray's ASHAScheduler (MOBSTER, Klein et al. 2020).

``GPyOptSearch`` under ASHA learns one value per trial, the one where ASHA stopped it, as if it were final. This
searcher learns from every result a trial reports at a rung level (``search/rungs.py`` recomputes the levels
from ``max_t``, ``grace_period`` and ``reduction_factor`` as Ray does), fits a GP over (configuration, resource)
and proposes by expected improvement at the highest level with at least ``dim`` observations, with running trials
as fantasies (kriging believer: the posterior mean) at the level they report next.

Usage::

    searcher = build_searcher("mobster", metric="val_loss", mode="min", seed=0, max_concurrent=4,
                              max_t=27, grace_period=1, reduction_factor=3)
    Tuner(trainable, param_space=space,
          tune_config=TuneConfig(search_alg=searcher, scheduler=build_scheduler("asha", max_t=27, ...)))

Surrogate (``model``): ``"joint"`` (one GP with a freeze-thaw exponential-decay kernel over the resource, the
default) or ``"per_rung"`` (independent GPs per level sharing hyperparameters); see ``search/mobster_model.py``.
Both were measured by ``benchmarks/multifidelity.py --backend simulated`` (10 seeds, 4 learning-curve objectives,
ASHA 1/3/9, 270 epochs): median final regret joint / per-rung 0.151 / 1.07 (Branin), 0.072 / 0.108 (Hartmann3),
0.73 / 0.94 (Hartmann6), 3.04 / 4.29 (Levy4); per-rung ended worse than random search on Branin and Levy4, joint
better than random on all four. Why joint wins: ASHA promotes one trial in ``reduction_factor``, so a per-rung GP
at the top level sees only the few trials that got there, and the lower levels' GPs, which see many, say nothing
about the top one; the joint kernel lets the many cheap low-rung results inform the top level through the
resource correlation, and a running trial's fantasy at its next rung also shrinks the variance at the top.

Bounded cost: at most ``max_fit_points`` observations are fitted (all at and above the target level, a seeded
random subset below), and hyperparameters are refitted every ``refit_every`` suggestions (the posterior is
recomputed every time). The state is the shared JSON state plus the rung values and the kernel hyperparameters.
"""

from __future__ import annotations

import logging

import numpy as np

from mritune.search.gpyopt_model import ModelSettings, gp_targets, minimize_acquisition
from mritune.search.mobster_model import MODELS, JointGP, RungGP, expected_improvement, fit_shared
from mritune.search.observations import STATUS_ERROR
from mritune.search.rungs import RungLog, asha_levels
from mritune.search.searcher_base import UnitCubeSearcher, _blas_limit, check_option
from mritune.search.space import SearchSpace

logger = logging.getLogger(__name__)

# Below this many fitted points a fit costs a few ms, and hyperparameters from a handful of points mislead: refit
# (from the defaults too) on every suggestion.
_ALWAYS_REFIT_BELOW = 30


class MobsterSearch(UnitCubeSearcher):
    """Learns from every ASHA rung result; EI at the highest well-observed rung; minimizes internally.

    Args:
        max_t: ASHA's ``max_t`` (the most ``training_iteration`` a trial reaches); required, like the two below it
            must equal the scheduler's or the searcher learns from the wrong results.
        grace_period: ASHA's ``grace_period`` (first rung).
        reduction_factor: ASHA's ``reduction_factor``.
        space: Ray Tune domains or a ``SearchSpace``; None: taken from ``Tuner(param_space=...)``.
        metric: The result key to optimize; None: from ``TuneConfig(metric=...)``.
        mode: ``"min"`` or ``"max"``; None: from ``TuneConfig(mode=...)``.
        points_to_evaluate: Configs to try first, in order.
        n_initial_points: Random suggestions before the GP is used (at least 1).
        model: ``"joint"`` or ``"per_rung"`` (module docstring).
        refit_every: Refit kernel hyperparameters every this many model-based suggestions (at least 1).
        max_fit_points: At most this many rung observations are fitted (at least 10).
        random_state_seed: Seed of the design, the subsampling and the acquisition search.
        blas_threads: BLAS threads while fitting (None: leave as is).

    Raises:
        ValueError: Bad ASHA settings (``max_t``/``grace_period`` not positive integers, ``grace_period > max_t``,
            ``reduction_factor <= 1``), ``model`` not one of the two, ``refit_every`` < 1, ``max_fit_points`` < 10,
            ``mode`` other than min/max, or an unsupported domain in ``space`` (the message names the key).

    Example:
        >>> from ray import tune
        >>> searcher = MobsterSearch(space={"lr": tune.loguniform(1e-4, 1e-1)}, metric="val_loss", mode="min",
        ...                          max_t=9, grace_period=1, reduction_factor=3, random_state_seed=0)
        >>> config = searcher.suggest("t1")
        >>> searcher.on_trial_result("t1", {"val_loss": 0.9, "training_iteration": 1})  # a rung: learned
    """

    def __init__(self, *, max_t: int, grace_period: int = 1, reduction_factor: float = 3,
                 space: dict | SearchSpace | None = None, metric: str | None = None, mode: str | None = None,
                 points_to_evaluate: list[dict] | None = None, n_initial_points: int = 5, model: str = "joint",
                 refit_every: int = 5, max_fit_points: int = 150, random_state_seed: int | None = None,
                 blas_threads: int | None = 1) -> None:
        check_option("model", model, MODELS)
        for name, value, low in (("refit_every", refit_every, 1), ("max_fit_points", max_fit_points, 10)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        levels = asha_levels(max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor)
        super().__init__(space=space, metric=metric, mode=mode, points_to_evaluate=points_to_evaluate,
                         n_initial_points=n_initial_points, random_state_seed=random_state_seed,
                         blas_threads=blas_threads)
        self._max_t = int(max_t)
        self._model_name = model
        self._refit_every = refit_every
        self._max_fit_points = max_fit_points
        self._rungs = RungLog(levels)
        self._theta: list[float] | None = None
        self._n_fits = 0

    @property
    def levels(self) -> tuple[int, ...]:
        """The ``training_iteration`` values it learns from (ASHA's rungs and ``max_t``)."""
        return self._rungs.levels

    # --------------------------------------------------------------------------------------------- Tune hooks

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._log.pending:
            self._rungs.record(trial_id, result, self._metric)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        # Tune passes the last result again; record() keeps the first value per (trial, level).
        if trial_id in self._log.pending and not error:
            self._rungs.record(trial_id, result, self._metric)
        super().on_trial_complete(trial_id, result, error=error)

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        """A point evaluated elsewhere counts as a full-budget (``max_t``) result."""
        super().add_evaluated_point(parameters, value, error=error, pruned=pruned)
        observation = self._log.finished[-1]
        if observation.status != STATUS_ERROR and observation.value is not None:
            self._rungs.add(observation.trial_id, self._max_t, observation.value)

    # --------------------------------------------------------------------------------------------- proposing

    def _next_point(self) -> np.ndarray:
        data = self._rung_data()
        if self._n_suggested < self._n_initial or data is None or len(data[2]) < 2:
            return self._random_point()
        X, levels, y = data
        pending = self._pending_design()
        with _blas_limit(self._blas_threads):
            candidates = self._propose_at_rung(X, levels, y, pending)
        taken = np.vstack([X] + ([pending[0]] if pending is not None else []))
        return self._first_new(candidates, taken, None)

    def _rung_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(encoded configs, levels, minimized values) of every rung observation, in recording order."""
        configs = {o.trial_id: o.config for o in self._log.finished}
        configs.update(self._log.pending)
        rows = [o for o in self._rungs.observations() if o.trial_id in configs]
        if not rows:
            return None
        sign = -1.0 if self._mode == "max" else 1.0
        X = np.vstack([self._space.encode(configs[o.trial_id]) for o in rows])
        return X, np.array([o.level for o in rows]), np.array([sign * o.value for o in rows])

    def _pending_design(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self._log.pending:
            return None
        X = np.vstack([self._space.encode(c) for c in self._log.pending.values()])
        return X, np.array([self._rungs.next_level(trial_id) for trial_id in self._log.pending])

    def _target_level(self, levels: np.ndarray, dim: int) -> int:
        """The highest level with at least ``dim`` distinct observations, else the lowest observed one."""
        counts = {level: int((levels == level).sum()) for level in self.levels}
        enough = [level for level in self.levels if counts[level] >= dim]
        return max(enough) if enough else int(levels.min())

    def _propose_at_rung(self, X: np.ndarray, levels: np.ndarray, y: np.ndarray,
                         pending: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        target = self._target_level(levels, X.shape[1])
        keep = self._subsample(levels, target)
        X, levels, y = X[keep], levels[keep], y[keep]
        refit = self._n_fits == 0 or len(y) < _ALWAYS_REFIT_BELOW \
            or (self._n_suggested - self._n_initial) % self._refit_every == 0
        if self._model_name == "joint":
            score, at_target = self._joint_acquisition(X, levels, y, pending, target, refit)
        else:
            score, at_target = self._per_rung_acquisition(X, levels, y, pending, target, refit)
        if refit:
            self._n_fits += 1
        return minimize_acquisition(score, X[at_target], y[at_target], ModelSettings(), self._rng)

    def _subsample(self, levels: np.ndarray, target: int) -> np.ndarray:
        """Indices fitted: every observation at or above the target level, a random subset of the rest."""
        top = np.flatnonzero(levels >= target)
        below = np.flatnonzero(levels < target)
        room = max(self._max_fit_points - len(top), 0)
        if len(below) > room:
            below = np.sort(self._rng.choice(below, size=room, replace=False))
        chosen = np.sort(np.concatenate([top, below]))
        return chosen[-self._max_fit_points:] if len(chosen) > self._max_fit_points else chosen

    def _cold_start_due(self, n_points: int) -> bool:
        # Few points: warm starts get stuck in spiky optima (a tiny lengthscale), and cold fits are cheap.
        return n_points < _ALWAYS_REFIT_BELOW or self._n_fits % 4 == 0

    def _warm_started(self, gp):
        """``gp`` starting from the last fitted hyperparameters (kept in the state), when they fit its shape."""
        if self._theta is not None and len(self._theta) == len(gp.theta):
            gp.theta = np.asarray(self._theta)
        return gp

    def _joint_acquisition(self, X: np.ndarray, levels: np.ndarray, y: np.ndarray,
                           pending: tuple[np.ndarray, np.ndarray] | None, target: int,
                           refit: bool) -> tuple[_EIAtLevel, np.ndarray]:
        gp = self._warm_started(JointGP(X.shape[1]))
        Z = np.column_stack([X, levels / self._max_t])
        y_std = gp_targets(y, "log")
        if refit:
            gp.fit_hyperparameters(Z, y_std, max_iter=50, cold=self._cold_start_due(len(y)))
            self._theta = [float(v) for v in gp.theta]
        gp.condition(Z, y_std)
        if pending is not None:  # kriging believer at each running trial's next level
            Z_pending = np.column_stack([pending[0], pending[1] / self._max_t])
            gp.condition(np.vstack([Z, Z_pending]), np.concatenate([y_std, gp.predict(Z_pending)[0]]))
        at_target = levels == target
        return _EIAtLevel(gp, float(y_std[at_target].min()), target / self._max_t), at_target

    def _per_rung_acquisition(self, X: np.ndarray, levels: np.ndarray, y: np.ndarray,
                              pending: tuple[np.ndarray, np.ndarray] | None, target: int,
                              refit: bool) -> tuple[_EIAtLevel, np.ndarray]:
        gp = self._warm_started(RungGP(X.shape[1]))
        by_level = {level: (X[levels == level], gp_targets(y[levels == level], "log"))
                    for level in np.unique(levels)}
        if refit:
            data = [(Xl, yl) for Xl, yl in by_level.values() if len(yl) >= 2]
            fit_shared(gp, data, max_iter=50, cold=self._cold_start_due(len(y)))
            self._theta = [float(v) for v in gp.theta]
        X_t, y_t = by_level[target]
        gp.condition(X_t, y_t)
        if pending is not None:
            # Independent rungs: a fantasy below the target level would not touch the target GP, so every running
            # trial is believed at the target level.
            gp.condition(np.vstack([X_t, pending[0]]), np.concatenate([y_t, gp.predict(pending[0])[0]]))
        return _EIAtLevel(gp, float(y_t.min()), None), levels == target

    # ------------------------------------------------------------------------------------------------- state

    def get_state(self) -> dict:
        return {**super().get_state(), "levels": list(self.levels), "rungs": self._rungs.to_state()}

    def set_state(self, state: dict) -> None:
        levels = tuple(int(v) for v in state.get("levels", ()))
        if levels != self.levels:
            raise ValueError(f"MobsterSearch: the state was written for rung levels {list(levels)}, this searcher "
                             f"has {list(self.levels)}; construct it with the same max_t, grace_period and "
                             "reduction_factor")
        super().set_state(state)
        self._rungs = RungLog.from_state(self.levels, state["rungs"])

    def _model_state(self) -> dict:
        # Kernel hyperparameters: a warm start for the next fit, not the model.
        return {"model": self._model_name, "hyperparameters": self._theta, "n_fits": self._n_fits}

    def _set_model_state(self, state: dict) -> None:
        same_model = state.get("model") == self._model_name
        self._theta = state.get("hyperparameters") if same_model else None
        self._n_fits = int(state.get("n_fits", 0)) if same_model else 0


class _EIAtLevel:
    """Negative EI at one resource level, in the ``acquisition_function(points)`` form minimize_acquisition uses."""

    def __init__(self, gp, best: float, resource: float | None) -> None:
        self._gp, self._best, self._resource = gp, best, resource

    def acquisition_function(self, points: np.ndarray) -> np.ndarray:
        Z = points if self._resource is None else np.column_stack([points, np.full(len(points), self._resource)])
        mean, std = self._gp.predict(Z)
        return -expected_improvement(mean, std, self._best)
