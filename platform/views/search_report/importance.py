"""Which hyperparameters mattered: Optuna's fANOVA evaluator over the search's scored trials.

The trials are copied into an in-memory Optuna study (each with its searched values and its score) only to ask
``optuna.importance.get_param_importances``; nothing else of Optuna is used. fANOVA fits a random forest, so the
answer is only as good as the number of trials behind it, which the report prints beside it.

Optuna's fANOVA walks every tree's leaves in Python for every hyperparameter: 215 s for 1,000 trials on the 2-core
machine. Above ``MAX_TRIALS`` scored trials it is computed on a seeded random sample of them (an unbiased sample
of the same distribution; ``benchmarks/report_scale.py`` compares the importances with and without it), and the
note says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mritune.platform.views.search_report.data import SearchRecord, SpaceParam

logger = logging.getLogger(__name__)

MIN_TRIALS = 3  # fewer scored trials than this: no importance is shown, and the report says why
MAX_TRIALS = 200  # more scored trials than this: fANOVA runs on a seeded random sample of this many


@dataclass(frozen=True, kw_only=True)
class Importance:
    values: dict[str, float]  # parameter -> share of the score's variance (sums to 1), most important first
    trials: int  # scored trials it rests on
    note: str  # how it was computed, or why it was not


def param_importance(record: SearchRecord, *, seed: int = 0, max_trials: int | None = MAX_TRIALS) -> Importance:
    """fANOVA importances of the searched hyperparameters for the search metric (``max_trials``: the sample)."""
    scored = [(score, trial) for score, trial in record.ranked() if score.value is not None]
    total = len(scored)
    if max_trials is not None and total > max_trials:
        import random

        scored = random.Random(seed).sample(scored, max_trials)
    params = [param for param in record.space if _varies(param, [trial.config.get(param.name) for _, trial in scored])]
    if len(scored) < MIN_TRIALS or not params:
        why = f"needs at least {MIN_TRIALS} scored trials with varying hyperparameters; this search has {len(scored)}"
        return Importance(values={}, trials=len(scored), note=why)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if record.mode == "max" else "minimize"
    study = optuna.create_study(direction=direction)
    distributions = {param.name: _distribution(param) for param in params}
    for score, trial in scored:
        values = {name: _optuna_value(param, trial.config.get(name)) for name, param in zip(distributions, params)}
        study.add_trial(optuna.trial.create_trial(params=values, distributions=distributions, value=score.value))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    over = f"{len(scored)} scored trials" if total == len(scored) else \
        f"a random sample of {len(scored)} of the {total} scored trials"
    return Importance(values=dict(values), trials=len(scored),
                      note=f"fANOVA (optuna {optuna.__version__}) over {over}")


def _varies(param: SpaceParam, values: list) -> bool:
    return None not in values and len({str(v) for v in values}) > 1


def _distribution(param: SpaceParam):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if param.kind in ("ordinal", "categorical"):
        return CategoricalDistribution([str(v) for v in param.values])
    if param.kind == "int":
        return IntDistribution(int(param.lower), int(param.upper), log=param.log)
    return FloatDistribution(float(param.lower), float(param.upper), log=param.log)


def _optuna_value(param: SpaceParam, value):
    if param.kind in ("ordinal", "categorical"):
        return str(value)
    # Clipped: a quantized value may round just past a bound, which Optuna's distribution would refuse.
    clipped = min(float(param.upper), max(float(param.lower), float(value)))
    return int(round(clipped)) if param.kind == "int" else clipped
