"""`mritune search SPEC --dry-run`: what a search would do, from the validated spec alone; starts nothing.

No data is read, Ray is not started and no MLflow store is opened: the searcher is built and asked for its first
configuration exactly as the search would ask it, merged with the fixed settings and checked by the task's
config class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mritune.platform.spec.config import SearchSpec
from mritune.trainables.tasks import get_task


@dataclass(frozen=True, kw_only=True)
class DryRun:
    """The resolved search of a spec.

    Args:
        name: The search's name.
        task: The task it trains.
        searcher: ``search.algorithm`` with its options.
        scheduler: The scheduler and its settings (``max_t`` resolved).
        objective: ``metric (mode)``.
        trials: ``num_samples``, ``max_concurrent`` and the time budget, in words.
        resources: Per-trial CPUs and GPUs.
        data: The dataset the search would read (a path with its classes, or the synthetic settings).
        space: Searched key → its domain, in words.
        fixed: The fixed settings every trial gets.
        first_config: The searcher's first configuration, complete (defaults filled in by the task's config).
        promotion: What happens before registering (re-runs) and the gate's rule, in words.
    """

    name: str
    task: str
    searcher: str
    scheduler: str
    objective: str
    trials: str
    resources: str
    data: str
    space: dict[str, str]
    fixed: dict[str, Any]
    first_config: dict[str, Any]
    promotion: str = ""


def dry_run(spec: SearchSpec) -> DryRun:
    """Resolve ``spec`` into a ``DryRun``; raises ValueError if the searcher refuses its space or options."""
    from mritune.platform.run.runner import param_space

    space = param_space(spec)
    config_class = get_task(spec.task).config_class
    first = config_class.from_dict({**spec.fixed_config(), **_first_suggestion(spec, space)}).to_dict()
    searched = {key for key in space if key not in spec.fixed_config()}
    searcher = f"{spec.search.algorithm} {spec.search.options or ''}".strip()
    if spec.scheduler.population_based:
        searcher = f"{searcher} (Ray's basic variant generator, seed {spec.search.seed})"
    return DryRun(
        name=spec.name,
        task=spec.task,
        searcher=searcher,
        scheduler=describe_scheduler(spec),
        objective=f"{spec.metric} ({spec.mode})",
        trials=(f"{spec.search.num_samples} trials, {spec.search.max_concurrent or 'unlimited'} at once, "
                f"time budget {spec.search.time_budget_s or 'none'}"),
        resources=f"{spec.resources.cpu:g} CPU, {spec.resources.gpu:g} GPU per trial",
        data=_describe_data(spec),
        space={key: describe_domain(space[key]) for key in sorted(searched)},
        fixed=spec.fixed_config(),
        first_config=first,
        promotion=_describe_promotion(spec),
    )


def _first_suggestion(spec: SearchSpec, space: dict) -> dict:
    """The searcher's first configuration, asked as the search would ask it."""
    from mritune.platform.run.runner import build_spec_searcher

    if spec.scheduler.population_based:
        from mritune.search.factory import first_variant

        return first_variant(space, seed=spec.search.seed, points_to_evaluate=spec.search.points_to_evaluate)
    searcher = build_spec_searcher(spec, max_concurrent=None)
    searcher.set_search_properties(spec.metric, spec.mode, config=space)
    return searcher.suggest("dry-run-0") or {}


def describe_scheduler(spec: SearchSpec) -> str:
    """The scheduler and its settings in words, ``max_t`` and pbt's interval resolved."""
    from mritune.search.factory import perturbation_interval_or_default

    scheduler = spec.scheduler
    if scheduler.name == "asha":
        return (f"asha (max_t {spec.epochs}, grace_period {scheduler.grace_period}, reduction_factor "
                f"{scheduler.reduction_factor:g})")
    if not scheduler.population_based:
        return f"{scheduler.name} ({spec.epochs} epochs)"
    interval = perturbation_interval_or_default(scheduler.perturbation_interval, max_t=spec.epochs)
    perturbed = set(spec.perturbed)
    fixed = [key for key in spec.search.space if key not in perturbed]
    resample = f", resample_probability {scheduler.resample_probability:g}" if scheduler.name == "pbt" else ""
    synch = ", synchronous" if scheduler.synch else ""
    return (f"{scheduler.name} ({spec.epochs} epochs, perturbs {', '.join(sorted(perturbed))} every {interval} "
            f"epoch(s){synch}, quantile_fraction {scheduler.quantile_fraction:g}{resample}; drawn once per trial and "
            f"copied with its weights: {', '.join(fixed) or 'nothing else'})")


def _describe_promotion(spec: SearchSpec) -> str:
    promotion = spec.promotion
    if not spec.registry.enabled:
        return "registry off: nothing re-run or registered"
    reruns = (f"the {promotion.rerun_top_k} best re-run on {promotion.rerun_seeds} new seeds each, the best mean "
              f"{spec.metric} registered" if promotion.reruns_enabled else "no re-runs, the best trial registered")
    if promotion.reruns_enabled and spec.scheduler.population_based:
        reruns += " (each re-run replays its trial's hyperparameter schedule)"
    return f"{reruns}; gate rule {promotion.rule}"


def describe_domain(domain: Any) -> str:
    """A Ray Tune domain in words: ``loguniform float (1e-05, 0.01)``, ``choice [16, 32]``; nested dicts too."""
    if isinstance(domain, dict):
        return "{" + ", ".join(f"{k}: {describe_domain(v)}" for k, v in domain.items()) + "}"
    categories = getattr(domain, "categories", None)
    if categories is not None:
        return f"choice {list(categories)}"
    sampler = getattr(domain, "sampler", None)
    if sampler is None:
        return repr(domain)
    step = getattr(sampler, "q", None)
    inner = getattr(sampler, "sampler", sampler)  # a Quantized sampler wraps the distribution
    kind = "loguniform" if type(inner).__name__.endswith("LogUniform") else "uniform"  # Float._LogUniform
    text = f"{kind} {type(domain).__name__.lower()} {domain.domain_str}"
    return text if step is None else f"{text} step {step}"


def _describe_data(spec: SearchSpec) -> str:
    data = spec.data
    if data.synthetic is not None:
        synth = data.synthetic
        where = f"synthetic (n {synth.n}, {synth.size} px, seed {synth.seed})"
    else:
        classes = ", ".join(data.classes) if data.classes else "the 4 Kaggle classes"
        where = f"{data.path} (classes: {classes})"
    return f"{where} at {data.resolved_image_size} px, val {data.val_fraction:g} / test {data.test_fraction:g}"


def format_dry_run(result: DryRun) -> str:
    """The dry run as the CLI prints it."""
    lines = [
        f"search {result.name} ({result.task}): dry run, nothing started",
        f"  data:       {result.data}",
        f"  searcher:   {result.searcher}",
        f"  scheduler:  {result.scheduler}",
        f"  objective:  {result.objective}",
        f"  trials:     {result.trials}",
        f"  resources:  {result.resources}",
        f"  promotion:  {result.promotion}",
        "  space:",
        *[f"    {key}: {text}" for key, text in result.space.items()],
        "  fixed:",
        *[f"    {key}: {value}" for key, value in sorted(result.fixed.items())],
        "  first configuration:",
        *[f"    {key}: {value}" for key, value in sorted(result.first_config.items())],
    ]
    return "\n".join(lines)
