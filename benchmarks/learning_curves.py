"""Multi-fidelity test objectives: learning curves whose value at the full budget is a known function.

``curve(function, config, epoch, max_t, rng)`` is the loss a "training" reports after ``epoch`` epochs::

    loss(x, t) = f(x) + S * a(u) * (exp(-k(u) * t / max_t) - exp(-k(u))) + S * 0.1 / sqrt(t) * N(0, 1)

``f`` is Branin, Hartmann3, Hartmann6 or Levy4 (``functions.py``), ``u`` the config in the unit cube, ``S`` the
function's median gap to its optimum over random configs (so curves and noise are on the function's own scale).
The amplitude ``a(u)`` in [0.3, 1.8] and rate ``k(u)`` in [1, 7] depend on the config through waves unrelated to
``f``: curves cross, so a config that is better at the full budget is often worse after a few epochs (early
ranking misleads), and the noise shrinks as ``1/sqrt(t)``. At ``t = max_t`` the mean is exactly ``f(x)``. NumPy
only, so Syne Tune's separate environment imports it too.
"""

from __future__ import annotations

import numpy as np

from functions import FUNCTIONS, TestFunction  # noqa: F401  (re-exported for the benchmark scripts)

CURVE_FUNCTIONS = ("branin", "hartmann3", "hartmann6", "levy4")
# Target regret ("solved") per function for the resource-to-target column: reachable within the budget by the
# model-based searchers, not by luck alone.
TARGET_REGRET = {"branin": 0.5, "hartmann3": 0.1, "hartmann6": 0.5, "levy4": 1.0}

_SCALES: dict[str, float] = {}


def unit(function: str, config: dict) -> np.ndarray:
    bounds = np.array(FUNCTIONS[function].bounds)
    x = np.array([config[f"x{i}"] for i in range(len(bounds))], dtype=float)
    return (x - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0])


def scale(function: str) -> float:
    """Median of f - f* over 2000 fixed random configs: the curves' and the noise's unit."""
    if function not in _SCALES:
        fn = FUNCTIONS[function]
        bounds = np.array(fn.bounds)
        u = np.random.default_rng(0).random((2000, len(bounds)))
        values = [fn.fn(bounds[:, 0] + row * (bounds[:, 1] - bounds[:, 0])) for row in u]
        _SCALES[function] = float(np.median(np.array(values) - fn.optimum))
    return _SCALES[function]


def shape(u: np.ndarray) -> tuple[float, float]:
    """(amplitude, rate) of a config's curve: smooth waves in u, independent of the objective."""
    d = len(u)
    w1 = np.cos(np.arange(1, d + 1))  # fixed directions
    w2 = np.sin(np.arange(1, d + 1) * 2.0)
    amplitude = 0.3 + 1.5 * (0.5 + 0.5 * np.sin(2 * np.pi * u @ w1))
    rate = 1.0 + 6.0 * (0.5 + 0.5 * np.cos(2 * np.pi * u @ w2))
    return float(amplitude), float(rate)


def curve(function: str, config: dict, epoch: int, max_t: int, rng: np.random.Generator) -> float:
    f = FUNCTIONS[function](config)
    amplitude, rate = shape(unit(function, config))
    s = scale(function)
    mean = f + s * amplitude * (np.exp(-rate * epoch / max_t) - np.exp(-rate))
    return float(mean + s * 0.1 / np.sqrt(epoch) * rng.normal())


def noise_rng(config: dict, seed: int) -> np.random.Generator:
    """A trial's noise stream: fixed by the config and the benchmark seed (repeatable runs)."""
    key = [int(abs(v) * 1e6) % (2**31) for k, v in sorted(config.items()) if k.startswith("x")]
    return np.random.default_rng([seed, *key])
