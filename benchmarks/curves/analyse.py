"""What the recorded table holds: which hyperparameters matter (fANOVA, and each one's effect near the optimum),
how noisy a training is, how early epochs rank configurations, and how its scores are spread.

    python benchmarks/curves/analyse.py [--table benchmarks/curves/classifier_32px.jsonl]

Writes ``benchmarks/curves/summary.json`` (small, committed) and prints a Markdown summary. The score of a
configuration is ``mritune.search.replay``'s: the mean over seeds of its best val macro-F1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def importances(table, *, seed: int = 0) -> dict[str, float]:
    """fANOVA importance (Optuna's evaluator) of each searched hyperparameter for the configurations' scores."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {}
    for param in table.space.params:
        if param.kind in ("ordinal", "categorical"):
            distributions[param.name] = CategoricalDistribution([str(v) for v in param.values])
        else:
            distributions[param.name] = FloatDistribution(float(param.lower), float(param.upper), log=param.log)
    study = optuna.create_study(direction="maximize")
    for row, config in enumerate(table.configs):
        params = {name: (str(config[name]) if isinstance(d, CategoricalDistribution) else float(config[name]))
                  for name, d in distributions.items()}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                  value=table.score(row)))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    return {k: round(v, 4) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()}


def sensitivity_at_best(table, *, grid: int = 21, seed: int = 0) -> dict[str, dict]:
    """How much each hyperparameter alone moves the score near the optimum, which fANOVA's variance shares hide
    when two hyperparameters dominate the whole space: a random forest on (unit cube -> score), swept one
    hyperparameter at a time across its range from the best recorded configuration. ``range`` is the predicted
    score's max - min along the sweep (what setting that one hyperparameter wrong costs), ``best_at`` the
    predicted best value; ``seed_noise`` in the summary is the yardstick."""
    from sklearn.ensemble import RandomForestRegressor

    scores = table.score_by_epoch[:, -1]
    forest = RandomForestRegressor(n_estimators=300, min_samples_leaf=2, random_state=seed)
    forest.fit(table.units, scores)
    best = table.units[int(np.argmax(scores))]
    out = {}
    for d, param in enumerate(table.space.params):
        values = np.linspace(0.0, 1.0, grid)
        points = np.repeat(best[None, :], grid, axis=0)
        points[:, d] = values
        predicted = forest.predict(points)
        best_value = table.space.decode(points[int(np.argmax(predicted))])[param.name]
        out[param.name] = {"range": round(float(predicted.max() - predicted.min()), 4),
                           "best_at": best_value if isinstance(best_value, (int, str)) else float(f"{best_value:.3g}")}
    return dict(sorted(out.items(), key=lambda item: -item[1]["range"]))


def seed_noise(table) -> dict:
    """How much one training's best val macro-F1 depends on its seed."""
    from scipy.stats import spearmanr

    best = np.nanmax(table.curves[..., 0], axis=2)  # (configs, seeds)
    pairs = [(best[:, i], best[:, j]) for i in range(best.shape[1]) for j in range(i + 1, best.shape[1])]
    return {
        "median_abs_difference": round(float(np.median([np.median(np.abs(a - b)) for a, b in pairs])), 4),
        "spearman_between_seeds": round(float(np.mean([spearmanr(a, b).statistic for a, b in pairs])), 3),
    }


def early_ranking(table, epochs=(1, 2, 4, 8)) -> dict:
    """Spearman correlation between a single training's val macro-F1 at an early epoch and its best over max_t."""
    from scipy.stats import spearmanr

    val = table.curves[..., 0].reshape(-1, table.max_t)
    val = val[~np.isnan(val).any(axis=1)]
    best = val.max(axis=1)
    drops = int(np.sum(val[:, :-1] - val[:, 1:] > 0.05))
    out = {f"epoch_{e}": round(float(spearmanr(val[:, e - 1], best).statistic), 3) for e in epochs}
    return {"spearman_vs_best": out, "drops_over_0.05": drops, "epoch_pairs": int(val.shape[0] * (table.max_t - 1)),
            "trainings": int(val.shape[0])}


def score_spread(table) -> dict:
    scores = table.score_by_epoch[:, -1]
    best = float(scores.max())
    return {
        "best": round(best, 4), "quantiles": {q: round(float(np.quantile(scores, q)), 4)
                                              for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
        "within_0.01_of_best": int(np.sum(scores >= best - 0.01)),
        "within_0.02_of_best": int(np.sum(scores >= best - 0.02)),
        "within_0.05_of_best": int(np.sum(scores >= best - 0.05)),
        "best_config": table.configs[int(np.argmax(scores))],
        "best_config_test_macro_f1": round(float(table.test_by_epoch[int(np.argmax(scores)), -1]), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(HERE / "classifier_32px.jsonl"))
    parser.add_argument("--out", default=str(HERE / "summary.json"))
    args = parser.parse_args()
    from mritune.search.replay import RecordedCurves

    table = RecordedCurves.load(args.table)
    seconds = table.curves[..., 3]
    summary = {
        "table": str(Path(args.table).resolve().relative_to(ROOT)), "configs": len(table.configs),
        "seeds": list(table.seeds), "epochs": table.max_t, "space": table.header["space"],
        "fixed": table.header["fixed"], "data": table.header["data"],
        "dataset_fingerprint": table.header["dataset_fingerprint"], "command": table.header["command"],
        "fanova_importance": importances(table), "sensitivity_at_best": sensitivity_at_best(table),
        "seed_noise": seed_noise(table),
        "early_ranking": early_ranking(table), "scores": score_spread(table),
        "epoch_seconds_median": {"first": round(float(np.nanmedian(seconds[..., 0])), 3),
                                 "later": round(float(np.nanmedian(seconds[..., 1:])), 3)},
        "recorded_trainings": int(np.sum(~np.isnan(table.curves[..., 0, 0]))),
    }
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("configs", "fanova_importance", "sensitivity_at_best", "seed_noise",
                                              "early_ranking", "scores", "epoch_seconds_median")}, indent=1))


if __name__ == "__main__":
    main()
