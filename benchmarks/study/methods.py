"""The study's methods: a searcher (with options) and a scheduler, built from the spec exactly as a search builds them.

A method name reads ``<searcher>[<option>=<value>,...]+<scheduler>``, the scheduler being ``fifo`` or
``asha-g<grace period>r<reduction factor>``; ``default`` is the shipped quick spec's searcher, options and ASHA
settings. Every method is turned into a real ``SearchSpec`` (the quick spec with ``--set``-style overrides) and
built by ``platform.run.runner.build_spec_searcher`` and ``search.factory.build_scheduler`` with the same arguments
``mritune search`` passes, so what the study measures is what users run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
QUICK_SPEC = ROOT / "configs" / "classifier-quick.yaml"
WORKERS = 4
DEFAULT = "default"
_NAME = re.compile(r"^(?P<searcher>[a-z]+)(\[(?P<options>[^\]]*)\])?\+(?P<scheduler>fifo|asha-g(?P<g>\d+)r(?P<r>\d+(\.\d+)?))$")
# The comparison set: five searchers under FIFO and under the quick spec's ASHA, ASHA's settings varied.
BASE_SEARCHERS = ("gpyopt", "mobster", "tpe", "bayesopt", "random")
ASHA_VARIANTS = ("asha-g1r2", "asha-g1r3", "asha-g2r2", "asha-g2r3", "asha-g4r2")


@dataclass(frozen=True)
class Method:
    name: str
    searcher: str
    options: dict = field(default_factory=dict)
    scheduler: str = "fifo"
    grace_period: int = 1
    reduction_factor: float = 3.0


def parse_method(name: str) -> Method:
    """``random+fifo``, ``gpyopt[acquisition=LCB]+asha-g1r3`` or ``default``; ValueError for anything else."""
    if name == DEFAULT:
        return default_method()
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"method {name!r}: expected <searcher>[opt=value,...]+fifo|asha-g<G>r<R>, or default")
    options = {}
    for item in filter(None, (match["options"] or "").split(",")):
        key, _, value = item.partition("=")
        options[key.strip()] = yaml.safe_load(value)
    if match["scheduler"] == "fifo":
        return Method(name=name, searcher=match["searcher"], options=options)
    reduction = float(match["r"])
    return Method(name=name, searcher=match["searcher"], options=options, scheduler="asha",
                  grace_period=int(match["g"]), reduction_factor=int(reduction) if reduction.is_integer() else reduction)


def default_method() -> Method:
    raw = yaml.safe_load(QUICK_SPEC.read_text())
    scheduler = raw["scheduler"]
    return Method(name=DEFAULT, searcher=raw["search"]["algorithm"], options=dict(raw["search"].get("options") or {}),
                  scheduler=scheduler["name"], grace_period=scheduler.get("grace_period", 1),
                  reduction_factor=scheduler.get("reduction_factor", 3))


def expand_methods(text: str) -> list[str]:
    """``--methods``: comma-separated names; ``all`` = every base searcher with FIFO and the quick spec's ASHA,
    ``asha-variants`` = every base searcher under each of ASHA_VARIANTS."""
    default = default_method()
    quick_asha = f"asha-g{default.grace_period}r{default.reduction_factor:g}"
    names: list[str] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        if item == "all":
            names += [f"{s}+{sched}" for s in BASE_SEARCHERS for sched in ("fifo", quick_asha)]
        elif item == "asha-variants":
            names += [f"{s}+{variant}" for s in BASE_SEARCHERS for variant in ASHA_VARIANTS]
        else:
            parse_method(item)  # refuse a bad name before anything runs
            names.append(item)
    return list(dict.fromkeys(names))


def method_spec(method: Method, *, seed: int, max_t: int, first_points: list[dict], space: dict):
    """The quick spec with this method's searcher, scheduler, seed and first points: a validated ``SearchSpec``."""
    from mritune.platform.spec.config import parse_spec

    raw = yaml.safe_load(QUICK_SPEC.read_text())
    if raw["search"]["space"] != space:
        raise SystemExit("error: the quick spec's space differs from the recorded table's; record a new table")
    from mritune.search.factory import SEARCHER_OPTIONS

    options = dict(method.options)
    if "model_fit" in SEARCHER_OPTIONS.get(method.searcher, {}):
        # A replay has no wall clock for a background kernel fit to race against: fits run inline, so a seed
        # repeats exactly (search/model_fit.py), unless the method names model_fit itself.
        options.setdefault("model_fit", "inline")
    raw["search"].update(algorithm=method.searcher, options=options, seed=seed,
                         max_concurrent=WORKERS, points_to_evaluate=first_points, num_samples=10_000)
    raw["scheduler"] = {"name": method.scheduler, "max_t": max_t, "grace_period": method.grace_period,
                        "reduction_factor": method.reduction_factor}
    return parse_spec(raw, source=f"method {method.name}")


def build_method(spec):
    """(searcher, scheduler, param_space) as ``platform.run.runner`` builds them for a search of ``spec``."""
    from mritune.platform.run.runner import build_spec_searcher, param_space
    from mritune.search.factory import build_scheduler

    if spec.search.algorithm == "tpe":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    searcher = build_spec_searcher(spec, max_concurrent=spec.search.max_concurrent)
    scheduler = build_scheduler(spec.scheduler.name, max_t=spec.epochs, grace_period=spec.scheduler.grace_period,
                                reduction_factor=spec.scheduler.reduction_factor, metric=spec.metric, mode=spec.mode)
    return searcher, scheduler, param_space(spec)
