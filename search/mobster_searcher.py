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

Bounded cost: at most ``max_fit_points`` observations are fitted (all at and above the target level, or the best
plus a spread of them when they alone are too many; then a spread of the lower levels' observations,
``search/fit_subset.py``), and hyperparameters are refitted every ``refit_every`` suggestions (the posterior is
recomputed every time), on a background thread by default (``model_fit``, ``search/model_fit.py``). The state is
the shared JSON state plus the rung values and the kernel hyperparameters.
"""

from __future__ import annotations

import logging

import numpy as np

from mritune.search.fit_subset import FitSubset, spread
from mritune.search.gpyopt_model import ModelSettings, gp_targets, minimize_acquisition
from mritune.search.mobster_model import MODELS, JointGP, RungGP, expected_improvement, fit_shared
from mritune.search.model_fit import INLINE_BELOW, HyperparameterFits
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
        max_t: ASHA's ``max_t`` (the most ``training_iteration`` a trial reaches); like the two below it, it
            must equal the scheduler's or the searcher learns from the wrong results. None only for a searcher
            that restores a saved state (which carries all three); it cannot suggest before.
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
        random_state_seed: Seed of the design and the acquisition search.
        blas_threads: BLAS threads while fitting (None: leave as is).
        model_fit: ``"background"`` (hyperparameters refitted on a thread while ``suggest()`` answers from the
            last fitted ones) or ``"inline"`` (refitted inside ``suggest()``; same seed, same sequence).

    Raises:
        ValueError: Bad ASHA settings (``max_t``/``grace_period`` not positive integers, ``grace_period > max_t``,
            ``reduction_factor <= 1``), ``model`` or ``model_fit`` not one of theirs, ``refit_every`` < 1,
            ``max_fit_points`` < 10,
            ``mode`` other than min/max, or an unsupported domain in ``space`` (the message names the key).

    Example:
        >>> from ray import tune
        >>> searcher = MobsterSearch(space={"lr": tune.loguniform(1e-4, 1e-1)}, metric="val_loss", mode="min",
        ...                          max_t=9, grace_period=1, reduction_factor=3, random_state_seed=0)
        >>> config = searcher.suggest("t1")
        >>> searcher.on_trial_result("t1", {"val_loss": 0.9, "training_iteration": 1})  # a rung: learned
    """

    def __init__(self, *, max_t: int | None = None, grace_period: int = 1, reduction_factor: float = 3,
                 space: dict | SearchSpace | None = None, metric: str | None = None, mode: str | None = None,
                 points_to_evaluate: list[dict] | None = None, n_initial_points: int = 5, model: str = "joint",
                 refit_every: int = 5, max_fit_points: int = 150, random_state_seed: int | None = None,
                 blas_threads: int | None = 1, model_fit: str = "background") -> None:
        check_option("model", model, MODELS)
        for name, value, low in (("refit_every", refit_every, 1), ("max_fit_points", max_fit_points, 10)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        # No max_t: no rung levels until a saved state brings them (``MobsterSearch().restore(path)``).
        levels = (() if max_t is None else
                  asha_levels(max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor))
        super().__init__(space=space, metric=metric, mode=mode, points_to_evaluate=points_to_evaluate,
                         n_initial_points=n_initial_points, random_state_seed=random_state_seed,
                         blas_threads=blas_threads)
        self._max_t = None if max_t is None else int(max_t)
        self._model_name = model
        self._refit_every = refit_every
        self._fit_subset = FitSubset(max_points=max_fit_points)
        self._rungs = RungLog(levels)
        self.fits = HyperparameterFits(model_fit=model_fit, blas_threads=blas_threads)
        self._n_fits = 0
        self._options.update(max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor, model=model,
                             refit_every=refit_every, max_fit_points=max_fit_points, model_fit=model_fit)

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

    def _check_ready(self) -> None:
        super()._check_ready()
        if self._max_t is None:
            raise ValueError("MobsterSearch: no rung levels; pass max_t (and ASHA's grace_period and "
                             "reduction_factor), or restore a state saved by a MobsterSearch")

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
        X = np.vstack([self._log.encoded(o.trial_id, configs[o.trial_id], self._space.encode) for o in rows])
        return X, np.array([o.level for o in rows]), np.array([sign * o.value for o in rows])

    def _pending_design(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self._log.pending:
            return None
        X = self._log.pending_design(self._space.encode)
        return X, np.array([self._rungs.next_level(trial_id) for trial_id in self._log.pending])

    def _target_level(self, levels: np.ndarray, dim: int) -> int:
        """The highest level with at least ``dim`` distinct observations, else the lowest observed one."""
        counts = {level: int((levels == level).sum()) for level in self.levels}
        enough = [level for level in self.levels if counts[level] >= dim]
        return max(enough) if enough else int(levels.min())

    def _propose_at_rung(self, X: np.ndarray, levels: np.ndarray, y: np.ndarray,
                         pending: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        target = self._target_level(levels, X.shape[1])
        keep = self._subsample(X, levels, y, target)
        X, levels, y = X[keep], levels[keep], y[keep]
        refit = self._n_fits == 0 or len(y) < _ALWAYS_REFIT_BELOW \
            or (self._n_suggested - self._n_initial) % self._refit_every == 0
        if self._model_name == "joint":
            score, at_target = self._joint_acquisition(X, levels, y, pending, target, refit)
        else:
            score, at_target = self._per_rung_acquisition(X, levels, y, pending, target, refit)
        return minimize_acquisition(score, X[at_target], y[at_target], ModelSettings(), self._rng)

    def _subsample(self, X: np.ndarray, levels: np.ndarray, y: np.ndarray, target: int) -> np.ndarray:
        """Indices fitted: every observation at or above the target level (the best plus a spread of them when
        they alone exceed ``max_fit_points``), then a spread of the lower levels' in (config, level)."""
        top = np.flatnonzero(levels >= target)
        cap = self._fit_subset.max_points
        if len(top) >= cap:
            return np.sort(top[self._fit_subset.select(X[top], y[top])])
        below = np.flatnonzero(levels < target)
        Z = np.column_stack([X, levels / self._max_t])
        return np.sort(np.concatenate([top, spread(Z, cap - len(top), chosen=top, candidates=below)]))

    def _cold_start_due(self, n_points: int) -> bool:
        # Few points: warm starts get stuck in spiky optima (a tiny lengthscale), and cold fits are cheap.
        return n_points < _ALWAYS_REFIT_BELOW or self._n_fits % 4 == 0

    def _fitted(self, gp):
        """``gp`` with the last fitted hyperparameters (kept in the state), when they fit its shape."""
        theta = self.fits.latest()
        if theta is not None and len(theta) == len(gp.theta):
            gp.theta = np.asarray(theta)
        return gp

    def _request_fit(self, fit, *, dim: int, n_points: int) -> None:
        """Refit the hyperparameters with ``fit(gp, cold)`` on a fresh GP of this model, inline or in the
        background (``self.fits``); the GP in use is never touched by the fit."""
        start = self.fits.latest()
        model, cold = (JointGP if self._model_name == "joint" else RungGP), self._cold_start_due(n_points)

        def fitted_theta() -> list[float]:
            gp = model(dim)
            if start is not None and len(start) == len(gp.theta):
                gp.theta = np.asarray(start)
            fit(gp, cold)
            return [float(v) for v in gp.theta]

        started = self.fits.request(fitted_theta, inline=start is None or n_points < INLINE_BELOW)
        self._n_fits += int(started)

    def _joint_acquisition(self, X: np.ndarray, levels: np.ndarray, y: np.ndarray,
                           pending: tuple[np.ndarray, np.ndarray] | None, target: int,
                           refit: bool) -> tuple[_EIAtLevel, np.ndarray]:
        Z = np.column_stack([X, levels / self._max_t])
        y_std = gp_targets(y, "log")
        if refit:
            Z_fit, y_fit = Z.copy(), y_std.copy()  # the fit may outlive this call
            self._request_fit(lambda gp, cold: gp.fit_hyperparameters(Z_fit, y_fit, max_iter=50, cold=cold),
                              dim=X.shape[1], n_points=len(y))
        gp = self._fitted(JointGP(X.shape[1]))
        gp.condition(Z, y_std)
        if pending is not None:  # kriging believer at each running trial's next level
            Z_pending = np.column_stack([pending[0], pending[1] / self._max_t])
            gp.condition(np.vstack([Z, Z_pending]), np.concatenate([y_std, gp.predict(Z_pending)[0]]))
        at_target = levels == target
        return _EIAtLevel(gp, float(y_std[at_target].min()), target / self._max_t), at_target

    def _per_rung_acquisition(self, X: np.ndarray, levels: np.ndarray, y: np.ndarray,
                              pending: tuple[np.ndarray, np.ndarray] | None, target: int,
                              refit: bool) -> tuple[_EIAtLevel, np.ndarray]:
        by_level = {level: (X[levels == level], gp_targets(y[levels == level], "log"))
                    for level in np.unique(levels)}
        if refit:
            data = [(Xl.copy(), yl.copy()) for Xl, yl in by_level.values() if len(yl) >= 2]
            self._request_fit(lambda gp, cold: fit_shared(gp, data, max_iter=50, cold=cold), dim=X.shape[1],
                              n_points=len(y))
        gp = self._fitted(RungGP(X.shape[1]))
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
        # A searcher built with ASHA's settings must have the state's rung levels (its scheduler has them). One
        # built without (MobsterSearch()) takes them from a version-2 state's options; a version-1 state has none.
        adopts = self._max_t is None and self._space is None and state.get("options") is not None
        if not adopts and levels != self.levels:
            raise ValueError(f"MobsterSearch: the state was written for rung levels {list(levels)}, this searcher "
                             f"has {list(self.levels)}; construct it with the same max_t, grace_period and "
                             "reduction_factor")
        super().set_state(state)
        self._rungs = RungLog.from_state(self.levels, state["rungs"])

    def _model_state(self) -> dict:
        # Kernel hyperparameters: a warm start for the next fit, not the model.
        return {"model": self._model_name, "hyperparameters": self.fits.peek(), "n_fits": self._n_fits}

    def _set_model_state(self, state: dict) -> None:
        same_model = state.get("model") == self._model_name
        self.fits = HyperparameterFits(model_fit=self.fits.model_fit, blas_threads=self._blas_threads)
        self.fits.set_latest(state.get("hyperparameters") if same_model else None)
        self._n_fits = int(state.get("n_fits", 0)) if same_model else 0


class _EIAtLevel:
    """Negative EI at one resource level, in the ``acquisition_function(points)`` form minimize_acquisition uses."""

    def __init__(self, gp, best: float, resource: float | None) -> None:
        self._gp, self._best, self._resource = gp, best, resource

    def acquisition_function(self, points: np.ndarray) -> np.ndarray:
        Z = points if self._resource is None else np.column_stack([points, np.full(len(points), self._resource)])
        mean, std = self._gp.predict(Z)
        return -expected_improvement(mean, std, self._best)
