"""Standard Bayesian-optimization test functions (minimization) with their Ray Tune spaces and optima."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

_HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_HARTMANN3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_HARTMANN3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
_HARTMANN6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                         [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_HARTMANN6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                                [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def branin(x: np.ndarray) -> float:
    x1, x2 = x
    b, c, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 1 / (8 * np.pi)
    return float((x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10)


def _hartmann(x: np.ndarray, a: np.ndarray, p: np.ndarray) -> float:
    return float(-np.sum(_HARTMANN_ALPHA * np.exp(-np.sum(a * (x - p) ** 2, axis=1))))


def hartmann3(x: np.ndarray) -> float:
    return _hartmann(x, _HARTMANN3_A, _HARTMANN3_P)


def hartmann6(x: np.ndarray) -> float:
    return _hartmann(x, _HARTMANN6_A, _HARTMANN6_P)


def levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    head = np.sin(np.pi * w[0]) ** 2
    body = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2)
    return float(head + body + tail)


@dataclass(frozen=True)
class TestFunction:
    name: str
    fn: Callable[[np.ndarray], float]
    bounds: tuple[tuple[float, float], ...]
    optimum: float
    regret_threshold: float  # "solved" level for the evaluations-to-threshold column

    def __call__(self, config: dict) -> float:
        return self.fn(np.array([config[f"x{i}"] for i in range(len(self.bounds))], dtype=float))

    def tune_space(self) -> dict:
        from ray import tune

        return {f"x{i}": tune.uniform(lo, hi) for i, (lo, hi) in enumerate(self.bounds)}


FUNCTIONS = {
    "branin": TestFunction("branin", branin, ((-5.0, 10.0), (0.0, 15.0)), 0.397887, 0.05),
    "hartmann3": TestFunction("hartmann3", hartmann3, ((0.0, 1.0),) * 3, -3.86278, 0.05),
    "hartmann6": TestFunction("hartmann6", hartmann6, ((0.0, 1.0),) * 6, -3.32237, 0.3),
    "levy4": TestFunction("levy4", levy, ((-10.0, 10.0),) * 4, 0.0, 0.5),
}
