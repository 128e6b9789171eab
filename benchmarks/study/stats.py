"""The study's statistics: regret read off traces, the interquartile mean with a bootstrap 95% interval, goals.

Over seeds, a method's regret at a budget is summarised as the interquartile mean (the mean of the middle half:
robust like the median, less noisy) with a percentile-bootstrap 95% interval over seeds (Agarwal et al. 2021,
as Syne Tune plots its studies).
"""

from __future__ import annotations

import math

import numpy as np

TARGET_REGRET = 0.01
BOOTSTRAP = 2000


def iqm(values) -> float:
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(values, dtype=float), 0.25))


def bootstrap_ci(values, statistic=iqm, *, samples: int = BOOTSTRAP, seed: int = 0) -> list[float]:
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    stats = [statistic(values[rng.integers(len(values), size=len(values))]) for _ in range(samples)]
    return [round(float(np.percentile(stats, 2.5)), 5), round(float(np.percentile(stats, 97.5)), 5)]


def value_at(trace: list, epochs: float, column: int, before_first: float) -> float:
    """A trace's column (2: regret, 3: test macro-F1) after ``epochs`` epochs (``before_first`` before any pick)."""
    value = before_first
    for point in trace:
        if point[0] > epochs:
            break
        value = point[column]
    return value


def epochs_to(trace: list, threshold: float) -> float | None:
    return next((float(point[0]) for point in trace if point[2] <= threshold), None)


def summarise_method(runs: list[dict], *, budgets: list[int], max_t: int, best_score: float) -> dict:
    """Per budget (fte, as a string key): IQM regret, its 95% interval, seeds, median epochs to the target regret
    (None when fewer than half the seeds reached it within that budget), IQM test macro-F1 of the pick."""
    out = {}
    for budget in budgets:
        limit = budget * max_t
        regrets = [value_at(run["trace"], limit, 2, best_score) for run in runs]
        tests = [value_at(run["trace"], limit, 3, 0.0) for run in runs]
        reached = [epochs_to(run["trace"], TARGET_REGRET) for run in runs]
        reached = [e if e is not None and e <= limit else math.inf for e in reached]
        median_epochs = float(np.median(reached)) if reached else math.inf
        out[str(budget)] = {
            "iqm_regret": round(iqm(regrets), 5), "ci95": bootstrap_ci(regrets), "seeds": len(runs),
            f"epochs_to_{TARGET_REGRET}": None if math.isinf(median_epochs) else median_epochs,
            "iqm_test_macro_f1": round(iqm(tests), 4),
            "searcher_s_per_run": round(float(np.mean([run["searcher_s"] for run in runs])), 2),
        }
    return out


def regret_curve(runs: list[dict], grid: np.ndarray, best_score: float) -> dict:
    """IQM regret and its 95% interval over seeds on an epoch grid (for the figures)."""
    values = np.array([[value_at(run["trace"], e, 2, best_score) for e in grid] for run in runs])
    cis = [bootstrap_ci(values[:, i], samples=500) for i in range(len(grid))]
    return {"epochs": grid.tolist(), "iqm": [round(iqm(values[:, i]), 5) for i in range(len(grid))],
            "low": [c[0] for c in cis], "high": [c[1] for c in cis]}


def epochs_to_reach(curve: dict, level: float) -> float | None:
    """First grid epoch at which an IQM regret curve is at or below ``level``."""
    return next((e for e, r in zip(curve["epochs"], curve["iqm"]) if r <= level), None)


def goals(summary: dict, curves: dict, *, max_t: int, asha_methods: set[str], random_asha: str,
          default: str = "default") -> dict:
    """The issue's goals, each with its numbers and whether it is met (left out when a method it needs did not run).

    ``random_asha`` is random search under the default's ASHA settings; ``asha_methods`` the methods using ASHA.
    """
    fifo, out = summary.get("random+fifo"), {}
    key = f"epochs_to_{TARGET_REGRET}"
    if default in summary and fifo and "30" in summary[default] and "30" in fifo:
        mine, theirs = summary[default]["30"], fifo["30"]
        out["default_beats_random_fifo_at_30"] = {
            "default": mine["iqm_regret"], "default_ci95": mine["ci95"], "random_fifo": theirs["iqm_regret"],
            "random_fifo_ci95": theirs["ci95"], "met": mine["ci95"][1] < theirs["ci95"][0]}
        a, b = summary[default][_largest(summary[default])][key], fifo[_largest(fifo)][key]
        out["default_epochs_to_target_vs_random_fifo"] = {
            "default": a, "random_fifo": b, "ratio": None if a is None or b is None else round(a / b, 3),
            "met": a is not None and (b is None or a / b <= 0.5)}
    if default in summary and random_asha in summary:
        theirs = summary[random_asha]
        worse = [b for b in summary[default] if b in theirs and
                 summary[default][b]["iqm_regret"] > theirs[b]["iqm_regret"]]
        out["default_never_worse_than_random_asha"] = {"random_asha": random_asha, "worse_at_fte": worse,
                                                       "met": not worse}
    if fifo and "30" in fifo:
        level = fifo["30"]["iqm_regret"]
        ratios = {m: (epochs_to_reach(curves[m], level) or math.inf) / (30 * max_t)
                  for m in asha_methods if m in curves}
        if ratios:
            best = min(ratios, key=ratios.get)
            out["best_asha_method_epochs_to_random_fifo_30"] = {
                "method": best, "ratio": None if math.isinf(ratios[best]) else round(ratios[best], 3),
                "random_fifo_30_iqm_regret": level, "met": ratios[best] <= 0.35}
    return out


def best_by_budget(summary: dict) -> dict:
    """Per budget: the method with the lowest IQM regret and every method whose interval overlaps its interval."""
    out = {}
    budgets = sorted({b for entry in summary.values() for b in entry}, key=int)
    for budget in budgets:
        rows = {name: entry[budget] for name, entry in summary.items() if budget in entry}
        best = min(rows, key=lambda name: rows[name]["iqm_regret"])
        high = rows[best]["ci95"][1]
        out[budget] = {"best": best, "iqm_regret": rows[best]["iqm_regret"],
                       "tied": sorted((n for n in rows if rows[n]["ci95"][0] <= high),
                                      key=lambda n: rows[n]["iqm_regret"])}
    return out


def _largest(entry: dict) -> str:
    return max((k for k in entry if k.isdigit()), key=int)
