"""BayesOptSearch: a parallel-aware Ray Tune searcher over bayesian-optimization >= 3 (``suggest``/``register``).

Ray's own ``BayesOptSearch`` calls ``UtilityFunction``, removed in bayesian-optimization 2, and ignores running
trials. Here every parameter is mapped through the shared unit-cube encoding (log-scaled parameters in log space,
integers and numeric choices as cells of one continuous coordinate, categories one-hot), so bayes_opt only sees
continuous ``[0, 1]`` bounds. bayes_opt maximizes; the observation log hands us minimized values and the target is
their negation. Running trials are registered as lies before each ``suggest``: ``constant_liar`` lies with the mean
of the observed values (CL-mean), ``kriging_believer`` (the default) with the GP's posterior mean. Measured on
Hartmann3 with 4 workers, 3 seeds: CL-mean regret 0.81/0.89/0.006, kriging believer 0.007/0.030/0.008.

Cost at many observations: the GP is fitted on at most ``max_fit_points`` observations (the best plus a spread of
the rest, ``search/fit_subset.py``). The kernel's hyperparameters are fitted on the real observations only (as
bayes_opt does, ``n_restarts_optimizer=5``), inline or on a background thread (``model_fit``,
``search/model_fit.py``); bayes_opt's own ``suggest`` then only conditions its GP on them (``optimizer=None``), lies
included, and searches the acquisition.
"""

from __future__ import annotations

import numpy as np

from mritune.search.fit_subset import FitSubset
from mritune.search.model_fit import INLINE_BELOW, HyperparameterFits
from mritune.search.options import ACQUISITIONS, BAYESOPT_PENDING
from mritune.search.searcher_base import DEFAULT_MAX_FIT_POINTS, UnitCubeSearcher, check_max_fit_points, check_option
from mritune.search.space import SearchSpace

BAYESOPT_ACQUISITIONS = ACQUISITIONS


class BayesOptSearch(UnitCubeSearcher):
    """Bayesian optimization with bayesian-optimization's GP (scikit-learn Matern 5/2).

    Args:
        space: Ray Tune domains (``{"lr": tune.loguniform(1e-4, 1e-1)}``) or a ``SearchSpace``; None: taken from
            ``Tuner(param_space=...)``.
        metric: The result key to optimize; None: from ``TuneConfig(metric=...)``.
        mode: ``"min"`` or ``"max"``; None: from ``TuneConfig(mode=...)``.
        points_to_evaluate: Configs to try first, in order, before any suggestion.
        n_initial_points: Random suggestions before the GP is used (at least 1).
        acquisition: ``"EI"``, ``"LCB"`` or ``"MPI"``.
        pending_strategy: The lie registered for running trials: ``"kriging_believer"`` (the GP's mean) or
            ``"constant_liar"`` (the mean of the observed values).
        random_state_seed: Seed of the random design and of bayes_opt (same seed, same sequence).
        blas_threads: BLAS threads while fitting (None: leave as is).
        max_fit_points: The GP is fitted on at most this many observations, the best plus a spread of the rest
            (at least 10; None: all of them).
        model_fit: ``"background"`` (the kernel refitted on a thread while ``suggest()`` answers from the last
            fitted one) or ``"inline"`` (refitted inside ``suggest()``; same seed, same sequence whatever the timing).

    Raises:
        ValueError: An option outside the values listed, ``mode`` other than min/max, ``n_initial_points`` < 1,
            ``max_fit_points`` < 10, or an unsupported domain in ``space`` (the message names the key).
        ImportError: bayesian-optimization >= 3 is not installed (raised at the first model-based suggestion).

    Example:
        >>> from ray import tune
        >>> searcher = BayesOptSearch(space={"x": tune.uniform(-2.0, 2.0)}, metric="loss", mode="min",
        ...                           random_state_seed=0)
        >>> config = searcher.suggest("trial-1")
        >>> searcher.on_trial_complete("trial-1", {"loss": (config["x"] - 0.3) ** 2})
    """

    def __init__(self, *, space: dict | SearchSpace | None = None, metric: str | None = None,
                 mode: str | None = None, points_to_evaluate: list[dict] | None = None, n_initial_points: int = 5,
                 acquisition: str = "EI", pending_strategy: str = "kriging_believer",
                 random_state_seed: int | None = None, blas_threads: int | None = 1,
                 max_fit_points: int | None = DEFAULT_MAX_FIT_POINTS, model_fit: str = "background") -> None:
        check_option("acquisition", acquisition, BAYESOPT_ACQUISITIONS)
        check_option("pending_strategy", pending_strategy, BAYESOPT_PENDING)
        check_max_fit_points(max_fit_points)
        super().__init__(space=space, metric=metric, mode=mode, points_to_evaluate=points_to_evaluate,
                         n_initial_points=n_initial_points, random_state_seed=random_state_seed,
                         blas_threads=blas_threads)
        self._acquisition = acquisition
        self._pending_strategy = pending_strategy
        self._fit_subset = FitSubset(max_points=max_fit_points)
        self.fits = HyperparameterFits(model_fit=model_fit, blas_threads=blas_threads)
        self._n_fits = 0
        self._options.update(acquisition=acquisition, pending_strategy=pending_strategy,
                             max_fit_points=max_fit_points, model_fit=model_fit)

    def _propose(self, X: np.ndarray, y: np.ndarray, X_pending: np.ndarray | None,
                 rng: np.random.Generator) -> np.ndarray:
        chosen = self._fit_subset.select(X, y)
        X, targets = X[chosen], -y[chosen]  # bayes_opt maximizes; y is already minimized
        optimizer = self._optimizer(X.shape[1], int(rng.integers(2**31 - 1)))
        # Registered on the target space itself: BayesianOptimization.register also logs, rebuilding the list of
        # every result each time (O(n²) over a suggestion).
        for x, target in zip(X, targets):
            optimizer.space.register(x, float(target))
        self._fix_kernel(optimizer._gp, X, targets)  # bayes_opt exposes no public handle on its regressor
        if X_pending is not None:
            for x, lie in zip(X_pending, self._lies(optimizer, X_pending, targets)):
                optimizer.space.register(x, float(lie))
        suggestion = optimizer.suggest()
        return np.array([[suggestion[key] for key in optimizer.space.keys]])

    def _fix_kernel(self, gp, X: np.ndarray, targets: np.ndarray) -> None:
        """Request a kernel fit on the real observations, then fix ``gp``'s kernel at the latest fitted one."""
        from sklearn.base import clone

        start = self.fits.latest()
        template, X_fit, t_fit = clone(gp), X.copy(), targets.copy()  # the fit may outlive this call
        started = self.fits.request(lambda: fit_kernel(template, X_fit, t_fit, start),
                                    inline=start is None or len(targets) < INLINE_BELOW)
        self._n_fits += int(started)
        gp.set_params(kernel=gp.kernel.clone_with_theta(np.asarray(self.fits.latest())), optimizer=None)

    def _lies(self, optimizer, X_pending: np.ndarray, targets: np.ndarray) -> np.ndarray:
        if self._pending_strategy == "constant_liar":
            return np.full(len(X_pending), targets.mean())
        # kriging_believer: condition the GP on the real observations only, then believe its mean.
        gp = optimizer._gp
        gp.fit(optimizer.space.params, optimizer.space.target)
        return gp.predict(X_pending)

    def _model_state(self) -> dict:
        # The kernel's fitted log hyperparameters: a warm start for the first fit after restore, not the model.
        return {"hyperparameters": self.fits.peek(), "n_fits": self._n_fits}

    def _set_model_state(self, state: dict) -> None:
        self.fits = HyperparameterFits(model_fit=self.fits.model_fit, blas_threads=self._blas_threads)
        self.fits.set_latest(state.get("hyperparameters"))
        self._n_fits = int(state.get("n_fits", 0))

    def _optimizer(self, dim: int, seed: int):
        try:
            from bayes_opt import BayesianOptimization, acquisition
        except ImportError as exc:
            raise ImportError("BayesOptSearch needs bayesian-optimization>=3: pip install 'mritune'") from exc
        acquisition_function = {
            "EI": lambda: acquisition.ExpectedImprovement(xi=0.01),
            "LCB": lambda: acquisition.UpperConfidenceBound(kappa=2.576),
            "MPI": lambda: acquisition.ProbabilityOfImprovement(xi=0.01),
        }[self._acquisition]()
        pbounds = {f"u{i:03d}": (0.0, 1.0) for i in range(dim)}
        return BayesianOptimization(f=None, pbounds=pbounds, acquisition_function=acquisition_function,
                                    random_state=seed, verbose=0, allow_duplicate_points=True)


def fit_kernel(template, X: np.ndarray, targets: np.ndarray, start: list[float] | None) -> list[float]:
    """ML-II kernel log hyperparameters of a clone of bayes_opt's regressor on (X, targets), from ``start``."""
    import warnings

    from sklearn.base import clone

    gp = clone(template)
    if start is not None:
        gp.set_params(kernel=gp.kernel.clone_with_theta(np.asarray(start)))
    with warnings.catch_warnings():  # as bayes_opt fits: sklearn warns at the lengthscale bounds
        warnings.simplefilter("ignore")
        gp.fit(X, targets)
    return [float(v) for v in gp.kernel_.theta]
