"""GPyOptSearch: a parallel-aware Ray Tune searcher on GPyOpt's GP model and acquisition functions.

Usage::

    from mritune.search.gpyopt_searcher import GPyOptSearch
    searcher = GPyOptSearch(metric="val_macro_f1", mode="max", pending_strategy="kriging_believer",
                            random_state_seed=0)
    Tuner(trainable, param_space={...}, tune_config=TuneConfig(search_alg=searcher, num_samples=40))

Running trials are accounted for with ``pending_strategy``: ``kriging_believer`` (pretend each runs to the GP's
posterior mean), ``constant_liar`` (pretend each returns the best value so far) or ``local_penalization``
(González et al. 2016: multiply the acquisition by exclusion zones around running points, sized by a Lipschitz
estimate). See ``mritune.search.observations`` for how early-stopped, failed and non-finite trials are treated.

Many observations: the GP is fitted on at most ``max_fit_points`` of them (the best plus a spread of the rest,
``search/fit_subset.py``), and with ``model_fit="background"`` the kernel hyperparameters are refitted on a
background thread while ``suggest()`` answers from the last fitted ones (``search/model_fit.py``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mritune.search.fit_subset import FitSubset
from mritune.search.gpyopt_model import (ACQUISITIONS, PENDING_STRATEGIES, TARGET_TRANSFORMS, ModelSettings,
                                         WarmGP, acquisition_with_pending, gp_targets, minimize_acquisition,
                                         unit_design_space)
from mritune.search.model_fit import HyperparameterFits
from mritune.search.searcher_base import DEFAULT_MAX_FIT_POINTS, UnitCubeSearcher, check_max_fit_points, check_option
from mritune.search.space import SearchSpace


class GPyOptSearch(UnitCubeSearcher):
    """Bayesian optimization with a Matern-5/2 ARD GP (GPyOpt/GPy); minimizes internally.

    Args:
        space: Ray Tune domains (``{"lr": tune.loguniform(1e-4, 1e-1)}``) or a ``SearchSpace``; None: taken from
            ``Tuner(param_space=...)``.
        metric: The result key to optimize; None: from ``TuneConfig(metric=...)``.
        mode: ``"min"`` or ``"max"``; None: from ``TuneConfig(mode=...)``.
        points_to_evaluate: Configs to try first, in order, before any suggestion.
        n_initial_points: Random suggestions before the GP is used (at least 1).
        acquisition: ``"EI"``, ``"LCB"`` or ``"MPI"``.
        pending_strategy: How running trials count: ``"kriging_believer"``, ``"constant_liar"`` or
            ``"local_penalization"``.
        target_transform: ``"log"`` (of the shifted minimized values) or ``"standardize"``, before the GP fit.
        random_state_seed: Seed of the random design and the acquisition optimizer (same seed, same sequence).
        blas_threads: BLAS threads while fitting (None: leave as is); more threads cost more on small matrices.
        max_fit_points: The GP is fitted on at most this many observations, the best plus a spread of the rest
            (at least 10; None: all of them).
        model_fit: ``"background"`` (kernel hyperparameters refitted on a thread while ``suggest()`` answers from
            the last fitted ones) or ``"inline"`` (refitted inside ``suggest()``; the same seed then gives the same
            sequence whatever the timing).
        model_settings: GP and acquisition-optimizer knobs (``ModelSettings``); the three options above win.

    Raises:
        ValueError: An option outside the values listed, ``mode`` other than min/max, ``n_initial_points`` < 1,
            ``max_fit_points`` < 10, or an unsupported domain in ``space`` (the message names the key).

    Example:
        >>> from ray import tune
        >>> searcher = GPyOptSearch(space={"lr": tune.loguniform(1e-4, 1e-1), "units": tune.choice([64, 128])},
        ...                         metric="val_macro_f1", mode="max", random_state_seed=0)
        >>> config = searcher.suggest("trial-1")
        >>> searcher.on_trial_complete("trial-1", {"val_macro_f1": 0.7})
    """

    def __init__(self, *, space: dict | SearchSpace | None = None, metric: str | None = None,
                 mode: str | None = None, points_to_evaluate: list[dict] | None = None, n_initial_points: int = 5,
                 acquisition: str = "EI", pending_strategy: str = "kriging_believer",
                 target_transform: str = "log", random_state_seed: int | None = None,
                 blas_threads: int | None = 1, max_fit_points: int | None = DEFAULT_MAX_FIT_POINTS,
                 model_fit: str = "background", model_settings: ModelSettings | None = None) -> None:
        check_option("acquisition", acquisition, ACQUISITIONS)
        check_option("pending_strategy", pending_strategy, PENDING_STRATEGIES)
        check_option("target_transform", target_transform, TARGET_TRANSFORMS)
        check_max_fit_points(max_fit_points)
        super().__init__(space=space, metric=metric, mode=mode, points_to_evaluate=points_to_evaluate,
                         n_initial_points=n_initial_points, random_state_seed=random_state_seed,
                         blas_threads=blas_threads)
        self._settings = dataclasses.replace(model_settings or ModelSettings(), acquisition=acquisition,
                                             pending_strategy=pending_strategy,
                                             target_transform=target_transform)
        self._fit_subset = FitSubset(max_points=max_fit_points)
        self._gp = WarmGP(self._settings, HyperparameterFits(model_fit=model_fit, blas_threads=blas_threads))
        self._model_settings = model_settings
        self._options.update(acquisition=acquisition, pending_strategy=pending_strategy,
                             target_transform=target_transform, max_fit_points=max_fit_points, model_fit=model_fit)

    def _constructor_extras(self) -> dict:
        return {"model_settings": self._model_settings}

    @property
    def fits(self) -> HyperparameterFits:
        """Where its hyperparameter fits run, and how many ran each way."""
        return self._gp.fits

    @fits.setter
    def fits(self, fits: HyperparameterFits) -> None:
        self._gp.fits = fits

    def _propose(self, X: np.ndarray, y: np.ndarray, X_pending: np.ndarray | None,
                 rng: np.random.Generator) -> np.ndarray:
        chosen = self._fit_subset.select(X, y)
        X, y = X[chosen], y[chosen]
        y_std = gp_targets(y, self._settings.target_transform)
        self._gp.fit(X, y_std)
        design_space = unit_design_space(X.shape[1])
        acquisition = acquisition_with_pending(self._gp, X, y_std, X_pending, self._settings, rng, design_space)
        return minimize_acquisition(acquisition, X, y_std, self._settings, rng)

    def _model_state(self) -> dict:
        # Kernel hyperparameters are a hint for the first refit after restore, not the model itself.
        return {"hyperparameters": self.fits.peek(), "n_fits": self._gp.n_fits}

    def _set_model_state(self, state: dict) -> None:
        fits = HyperparameterFits(model_fit=self.fits.model_fit, blas_threads=self._blas_threads)
        fits.set_latest(state.get("hyperparameters"))
        self._gp = WarmGP(self._settings, fits)
        self._gp.n_fits = int(state.get("n_fits", 0))
