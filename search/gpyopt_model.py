"""GPyOpt modelling pieces for :class:`GPyOptSearch`: a warm-started GP, acquisitions, pending-trial strategies.

Why not ``GPyOpt.methods.BayesianOptimization``: it refits the GP from scratch with 5 random restarts on every
call (3.2 s per suggestion at 100 observations in 6-D here), draws from NumPy's global RNG (no reproducibility),
and its local-penalization evaluator crashes with current SciPy. We use GPyOpt's ``GPModel`` (GPy underneath),
its acquisition classes (``AcquisitionEI``/``LCB``/``MPI``/``LP``) and replace three things:

- hyperparameters are warm-started from the previous fit (one optimizer run), with a cold start from the defaults
  every ``cold_start_every`` fits, keeping whichever has the higher marginal likelihood;
- the acquisition is optimized by scoring random candidates in batches, refined by shrinking local perturbations
  around the leaders (no GPy predictive gradients: they cost ~50 ms a point), all from the searcher's seeded RNG;
- ``estimate_lipschitz`` is GPyOpt's ``estimate_L`` with the ``res.fun[0][0]`` crash fixed and a seeded RNG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mritune.search.model_fit import INLINE_BELOW, HyperparameterFits
from mritune.search.options import ACQUISITIONS, PENDING_STRATEGIES, TARGET_TRANSFORMS  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class ModelSettings:
    """Knobs of the GP and the acquisition optimizer (defaults chosen by benchmarks/suggest_overhead.py)."""

    acquisition: str = "EI"
    pending_strategy: str = "kriging_believer"
    target_transform: str = "log"
    max_iters: int = 200
    cold_start_every: int = 10
    n_random_candidates: int = 2000
    n_local_candidates: int = 500
    n_refine_leaders: int = 5
    refine_scales: tuple[float, ...] = (0.1, 0.03, 0.01)


class WarmGP:
    """A GPyOpt GPModel on standardized targets whose kernel hyperparameters carry over between fits.

    ``fit`` asks ``fits`` (``search/model_fit.py``) for a hyperparameter fit, inline or in the background, and
    conditions ``model`` on the data it is given with the latest fitted hyperparameters (no optimization there).
    """

    def __init__(self, settings: ModelSettings, fits: HyperparameterFits) -> None:
        self._settings = settings
        self.fits = fits
        self.model = None  # GPyOpt.models.GPModel, conditioned on the last fit()'s data
        self.n_fits = 0  # hyperparameter fits started (inline or in the background)

    @property
    def hyperparameters(self) -> list[float] | None:
        return self.fits.latest()

    def fit(self, X: np.ndarray, y_std: np.ndarray) -> None:
        Y = y_std.reshape(-1, 1)
        start = self.fits.latest()
        # Few points: fits are cheap and unstable, so always compare against a cold start.
        cold = start is None or len(y_std) < 20 or self.n_fits % self._settings.cold_start_every == 0
        X_fit, Y_fit, settings = X.copy(), Y.copy(), self._settings  # the fit may outlive this call
        started = self.fits.request(lambda: fit_hyperparameters(X_fit, Y_fit, start, cold=cold, settings=settings),
                                    inline=start is None or len(y_std) < INLINE_BELOW)
        self.n_fits += int(started)
        self.model = gp_model(X, Y, self.fits.latest(), settings)


def fit_hyperparameters(X: np.ndarray, Y: np.ndarray, start: list[float] | None, *, cold: bool,
                        settings: ModelSettings) -> list[float]:
    """ML-II kernel hyperparameters on (X, Y): warm from ``start`` and/or cold from the defaults, the likelier."""
    candidates = [gp_model(X, Y, start, settings) if start is not None else None,
                  gp_model(X, Y, None, settings) if cold else None]
    candidates = [m for m in candidates if m is not None]
    for candidate in candidates:
        candidate.updateModel(X, Y, None, None)
    best = max(candidates, key=lambda m: float(np.squeeze(m.model.log_likelihood())))
    return [float(v) for v in best.model.optimizer_array]


def gp_model(X: np.ndarray, Y: np.ndarray, start: list[float] | None, settings: ModelSettings):
    """A GPyOpt GPModel on (X, Y) with hyperparameters ``start`` (its optimizer array), else GPy's defaults."""
    import GPy
    from GPyOpt.models import GPModel

    kernel = GPy.kern.Matern52(X.shape[1], variance=1.0, lengthscale=0.3, ARD=True)
    model = GPModel(kernel=kernel, noise_var=1e-2, exact_feval=False, optimize_restarts=1,
                    max_iters=settings.max_iters, verbose=False)
    model._create_model(X, Y)
    bound_hyperparameters(model.model, start)
    return model


def bound_hyperparameters(gp, start: list[float] | None) -> None:
    """Bound a GPy model's kernel and noise hyperparameters and start them at ``start`` (its optimizer array)."""
    # Each change below would recompute the posterior (GPy/paramz observers: 40 ms each at 200 points); with
    # updates off they are applied together, and turning updates back on computes it once.
    gp.update_model(False)
    # Bounds keep the fit away from degenerate optima on few points (targets are standardized, inputs in [0,1]).
    # The upper lengthscale bound matters most: on a handful of points ML-II likes to call a dimension
    # irrelevant (lengthscale -> inf), and EI then sweeps that dimension's edges.
    gp.kern.lengthscale.constrain_bounded(0.03, 2.0, warning=False)
    gp.kern.variance.constrain_bounded(0.05, 20.0, warning=False)
    gp.Gaussian_noise.constrain_bounded(1e-6, 0.5, warning=False)
    if start is not None and len(start) == len(gp.optimizer_array):
        gp.optimizer_array = np.asarray(start)
    gp.update_model(True)


def standardize(y: np.ndarray) -> np.ndarray:
    spread = y.std()
    return (y - y.mean()) / (spread if spread > 0 else 1.0)


def gp_targets(y: np.ndarray, transform: str) -> np.ndarray:
    """What the GP is fitted on, from minimized values: standardized, after a log warp by default.

    ``log`` maps the gap to the best value through ``log1p(gap / median gap)``, a monotone warp (the best point stays
    best) that compresses the bad tail. A stationary GP fitted on raw values spends its lengthscales and variance
    on the few terrible configurations (a diverged learning rate, Levy's walls); the warp lets it resolve the
    region that matters. Measured by benchmarks/search_quality.py against plain standardization.
    """
    if transform == "log":
        gap = y - y.min()
        positive = gap[gap > 0]
        y = np.log1p(gap / (np.median(positive) if len(positive) else 1.0))
    return standardize(y)


def unit_design_space(dim: int):
    from GPyOpt import Design_space

    return Design_space([{"name": f"u{i}", "type": "continuous", "domain": (0.0, 1.0)} for i in range(dim)])


def build_acquisition(name: str, model, space):
    from GPyOpt.acquisitions import AcquisitionEI, AcquisitionLCB, AcquisitionMPI

    if name == "EI":
        return AcquisitionEI(model, space, jitter=0.01)
    if name == "LCB":
        return AcquisitionLCB(model, space, exploration_weight=2.0)
    return AcquisitionMPI(model, space, jitter=0.01)


def acquisition_with_pending(gp: WarmGP, X: np.ndarray, y_std: np.ndarray, X_pending: np.ndarray | None,
                             settings: ModelSettings, rng: np.random.Generator, space):
    """The acquisition to minimize, taking running trials into account with the chosen strategy."""
    base = build_acquisition(settings.acquisition, gp.model, space)
    if X_pending is None:
        return base
    if settings.pending_strategy == "local_penalization":
        from GPyOpt.acquisitions import AcquisitionLP

        penalized = AcquisitionLP(gp.model, space, None, base)
        lipschitz = estimate_lipschitz(gp.model.model, X.shape[1], rng)
        penalized.update_batches(X_pending, lipschitz, float(y_std.min()))
        return penalized
    if settings.pending_strategy == "kriging_believer":
        lies = gp.model.model.predict(X_pending)[0]
    else:  # constant_liar: the best value seen so far (CL-min)
        lies = np.full((len(X_pending), 1), float(y_std.min()))
    # Hyperparameters stay those fitted on real data; only the posterior is conditioned on the lies.
    gp.model.model.set_XY(np.vstack([X, X_pending]), np.vstack([y_std.reshape(-1, 1), lies]))
    return base


def estimate_lipschitz(gp_model, dim: int, rng: np.random.Generator) -> float:
    """GPyOpt's ``estimate_L`` (max norm of the posterior-mean gradient), rebuilt without its SciPy crash.

    GPyOpt reads ``res.fun[0][0]`` from an L-BFGS-B result, a float in current SciPy. Its gradient calls
    (GPy ``predictive_gradients``) also cost ~50 ms a point, so the gradient norm is taken by central differences
    of the posterior mean over random points, the observations and a local refinement, in batched predictions.
    """
    samples = np.vstack([rng.random((500, dim)), gp_model.X])
    norms = _mean_gradient_norms(gp_model, samples)
    leaders = samples[np.argsort(norms)[-5:]]
    local = np.clip(leaders[rng.integers(5, size=200)] + rng.normal(scale=0.02, size=(200, dim)), 0.0, 1.0)
    lipschitz = float(max(norms.max(), _mean_gradient_norms(gp_model, local).max()))
    return lipschitz if lipschitz >= 1e-7 else 10.0  # flat model: GPyOpt's fallback


def _mean_gradient_norms(gp_model, points: np.ndarray, step: float = 1e-4) -> np.ndarray:
    n, dim = points.shape
    offsets = np.vstack([np.eye(dim) * step, -np.eye(dim) * step])  # (2d, d)
    shifted = (points[:, None, :] + offsets[None, :, :]).reshape(-1, dim)
    means = gp_model.predict(shifted)[0].reshape(n, 2, dim)
    gradients = (means[:, 0, :] - means[:, 1, :]) / (2 * step)
    return np.sqrt((gradients**2).sum(axis=1))


def minimize_acquisition(acquisition, X: np.ndarray, y: np.ndarray, settings: ModelSettings,
                         rng: np.random.Generator) -> np.ndarray:
    """Candidates in [0,1]^d ranked by acquisition value (lowest first).

    Batched random search refined by shrinking local perturbations around the best candidates. Measured here:
    GPy's ``predictive_gradients`` costs ~50 ms per point at 100 observations, so gradient-based L-BFGS made the
    acquisition step ~90% of a suggestion; a batched ``predict`` over a thousand points costs a few ms.
    """
    dim = X.shape[1]
    best_observed = X[np.argsort(y)[:5]]
    candidates = np.vstack([rng.random((settings.n_random_candidates, dim)),
                            _perturb(best_observed, settings.n_local_candidates, 0.05, rng)])
    scores = _scores(acquisition, candidates)
    for scale in settings.refine_scales:
        leaders = candidates[np.argsort(scores)[:settings.n_refine_leaders]]
        local = _perturb(leaders, settings.n_local_candidates, scale, rng)
        candidates, scores = np.vstack([candidates, local]), np.concatenate([scores, _scores(acquisition, local)])
    return candidates[np.argsort(scores, kind="stable")[:50]]


def _perturb(centres: np.ndarray, n: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    picked = centres[rng.integers(len(centres), size=n)]
    return np.clip(picked + rng.normal(scale=scale, size=picked.shape), 0.0, 1.0)


def _scores(acquisition, points: np.ndarray) -> np.ndarray:
    scores = np.asarray(acquisition.acquisition_function(points), dtype=float).ravel()
    return np.where(np.isfinite(scores), scores, np.inf)
