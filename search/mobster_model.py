"""Gaussian-process surrogates over (configuration, resource) for :class:`MobsterSearch`, in NumPy/SciPy.

Two models, one interface (``fit_hyperparameters``, ``condition``, ``predict``):

- ``JointGP`` ("joint"): one GP over ``(x, r)``, ``r = level / max_t``, with the kernel
  ``k((x,r),(x',r')) = M(x,x') * (s_f + s_c * (b / (r + r' + b)) ** a)``: ``M`` a Matern-5/2 ARD kernel, the
  second factor Swersky et al.'s freeze-thaw exponential-decay kernel (a mixture of exponential decays over the
  resource, vanishing as ``r → ∞``), so a curve's level at large resource is its config's asymptote ``s_f * M`` and
  early values differ from it by a decaying, config-correlated offset. Klein et al. 2020 (MOBSTER) use this family.
- ``PerRungGP`` ("per_rung"): an independent GP per rung level on that level's values, all sharing one set of
  Matern-5/2 ARD hyperparameters fitted on the summed marginal likelihood (each level standardized on its own).

Hyperparameters are fitted by L-BFGS-B on the log marginal likelihood (finite differences: a handful of
parameters, Cholesky of at most ``max_fit_points`` rows), warm-started from the previous fit. GPy is not used: it
has no freeze-thaw kernel, and its optimizer restarts are what made GPyOpt's suggestions slow (see gpyopt_model).
"""

from __future__ import annotations

import numpy as np

from mritune.search.options import MOBSTER_MODELS

MODELS = MOBSTER_MODELS
_JITTER = 1e-8


def matern52(A: np.ndarray, B: np.ndarray, lengthscales: np.ndarray) -> np.ndarray:
    diff = (A[:, None, :] - B[None, :, :]) / lengthscales
    r = np.sqrt(np.maximum((diff**2).sum(axis=-1), 0.0)) * np.sqrt(5.0)
    return (1.0 + r + r**2 / 3.0) * np.exp(-r)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.01) -> np.ndarray:
    """EI for minimization below ``best``."""
    from scipy.stats import norm

    std = np.maximum(std, 1e-9)
    z = (best - mean - xi) / std
    return std * (z * norm.cdf(z) + norm.pdf(z))


class _GPCore:
    """Exact GP regression on standardized targets (zero mean); subclasses define the kernel and its bounds."""

    # bounds of log hyperparameters, set by subclasses before __init__
    bounds: list[tuple[float, float]]

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.theta = self.default_theta()
        self._X = self._y = self._chol = self._alpha = None

    def default_theta(self) -> np.ndarray:
        raise NotImplementedError

    def kernel(self, theta: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def noise(self, theta: np.ndarray) -> float:
        return float(np.exp(theta[-1]))

    def neg_log_likelihood(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        K = self.kernel(theta, X, X) + (self.noise(theta) + _JITTER) * np.eye(len(y))
        try:
            chol = np.linalg.cholesky(K)
        except np.linalg.LinAlgError:
            return 1e10
        alpha = _solve(chol, y)
        return float(0.5 * y @ alpha + np.log(np.diag(chol)).sum() + 0.5 * len(y) * np.log(2 * np.pi))

    def fit_hyperparameters(self, X: np.ndarray, y: np.ndarray, *, max_iter: int, cold: bool) -> None:
        """ML-II on (X, y) from the current hyperparameters (and from the defaults when ``cold``)."""
        fit_theta(self, lambda theta: self.neg_log_likelihood(theta, X, y), max_iter=max_iter, cold=cold)

    def condition(self, X: np.ndarray, y: np.ndarray) -> None:
        """Posterior given (X, y) with the current hyperparameters (no refit)."""
        K = self.kernel(self.theta, X, X) + (self.noise(self.theta) + _JITTER) * np.eye(len(y))
        self._chol = np.linalg.cholesky(K + 1e-6 * np.eye(len(y)))
        self._X, self._y, self._alpha = X, y, _solve(self._chol, y)

    def predict(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.linalg import solve_triangular

        cross = self.kernel(self.theta, Z, self._X)
        v = solve_triangular(self._chol, cross.T, lower=True)
        var = np.maximum(self.prior_variance(self.theta, Z) - (v**2).sum(axis=0), 1e-12)
        return cross @ self._alpha, np.sqrt(var)

    def prior_variance(self, theta: np.ndarray, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class JointGP(_GPCore):
    """GP over [x, r] (last column r = level / max_t) with the Matern x freeze-thaw kernel; see module doc."""

    def __init__(self, dim: int) -> None:
        # theta: log lengthscales (dim), log s_f, log s_c, log a, log b, log noise
        self.bounds = [(np.log(0.03), np.log(2.0))] * dim + [(np.log(0.05), np.log(20.0)), (np.log(1e-3), np.log(20.0)),
                                                               (np.log(0.1), np.log(5.0)), (np.log(0.01), np.log(5.0)),
                                                               (np.log(1e-6), np.log(0.5))]
        super().__init__(dim)

    def default_theta(self) -> np.ndarray:
        return np.log(np.r_[np.full(self.dim, 0.3), 1.0, 0.5, 1.0, 0.3, 1e-2])

    def kernel(self, theta: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        p = np.exp(theta)
        lengthscales, s_f, s_c, a, b = p[:self.dim], p[self.dim], p[self.dim + 1], p[self.dim + 2], p[self.dim + 3]
        decay = (b / (A[:, -1][:, None] + B[:, -1][None, :] + b)) ** a
        return matern52(A[:, :-1], B[:, :-1], lengthscales) * (s_f + s_c * decay)

    def prior_variance(self, theta: np.ndarray, Z: np.ndarray) -> np.ndarray:
        s_f, s_c, a, b = np.exp(theta[self.dim:self.dim + 4])
        return s_f + s_c * (b / (2 * Z[:, -1] + b)) ** a


class RungGP(_GPCore):
    """Matern-5/2 ARD GP over x alone (one rung's values); theta: log lengthscales, log variance, log noise."""

    def __init__(self, dim: int) -> None:
        self.bounds = [(np.log(0.03), np.log(2.0))] * dim + [(np.log(0.05), np.log(20.0)),
                                                               (np.log(1e-6), np.log(0.5))]
        super().__init__(dim)

    def default_theta(self) -> np.ndarray:
        return np.log(np.r_[np.full(self.dim, 0.3), 1.0, 1e-2])

    def kernel(self, theta: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        p = np.exp(theta)
        return p[self.dim] * matern52(A, B, p[:self.dim])

    def prior_variance(self, theta: np.ndarray, Z: np.ndarray) -> np.ndarray:
        return np.full(len(Z), np.exp(theta[self.dim]))


def fit_shared(gp: RungGP, data: list[tuple[np.ndarray, np.ndarray]], *, max_iter: int, cold: bool) -> None:
    """Fit one ``RungGP``'s hyperparameters on the summed likelihood of every rung's (X, y) (``PerRungGP``)."""
    fit_theta(gp, lambda theta: sum(gp.neg_log_likelihood(theta, X, y) for X, y in data), max_iter=max_iter,
              cold=cold)


def fit_theta(gp: _GPCore, objective, *, max_iter: int, cold: bool) -> None:
    """L-BFGS-B on ``objective(theta)`` from ``gp.theta`` (and from the defaults when ``cold``); keeps the best."""
    from scipy.optimize import minimize

    bounds = np.array(gp.bounds)
    starts = [gp.theta] + ([gp.default_theta()] if cold else [])
    best_theta, best_value = gp.theta, np.inf
    for start in starts:
        result = minimize(_with_gradient(objective, bounds), np.clip(start, bounds[:, 0], bounds[:, 1]),
                          jac=True, method="L-BFGS-B", bounds=gp.bounds, options={"maxiter": max_iter})
        if np.isfinite(result.fun) and result.fun < best_value:
            best_theta, best_value = result.x, result.fun
    gp.theta = np.asarray(best_theta, dtype=float)


def _with_gradient(objective, bounds: np.ndarray):
    """``objective`` and its forward-difference gradient, at ``theta`` clipped to ``bounds``.

    SciPy 1.17's L-BFGS-B can step a rounding error past a bound, and its own finite differences then refuse the
    point ("x0 violates bound constraints"), which ended a search; steps here stay inside the bounds.
    """
    lower, upper = bounds[:, 0], bounds[:, 1]

    def value_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.clip(theta, lower, upper)
        value = objective(theta)
        gradient = np.zeros_like(theta)
        for i in range(len(theta)):
            step = 1e-7 * max(1.0, abs(theta[i]))
            shifted = theta.copy()
            shifted[i] += step if theta[i] + step <= upper[i] else -step
            gradient[i] = (objective(shifted) - value) / (shifted[i] - theta[i])
        return value, gradient

    return value_and_gradient


def _solve(chol: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.linalg import cho_solve

    return cho_solve((chol, True), y)
