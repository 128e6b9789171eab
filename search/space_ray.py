"""Ray Tune domains → :class:`~mritune.search.space.SearchSpace`: a ``param_space`` (nested dict of domains and
constants) becomes the parameters the unit-cube encoding works on. Unsupported domains raise ``ValueError``
naming the key path and the domain type.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterator

from mritune.search.space import Param, Path, SearchSpace


def convert_ray_space(config: dict) -> SearchSpace:
    """Convert a Ray Tune ``param_space`` (nested dict of domains and constants) into a :class:`SearchSpace`."""
    if not isinstance(config, dict):
        raise ValueError(f"search space must be a dict of parameter names to Ray Tune domains, got {type(config).__name__}")
    params, constants = [], []
    for path, value in _walk(config, ()):
        param = _param_from_domain(path, value)
        if param is None:
            constants.append((path, value))
        else:
            params.append(param)
    if not params:
        raise ValueError("search space has no searchable parameters; use tune.uniform/loguniform/choice/... domains")
    return SearchSpace(params=tuple(params), constants=tuple(constants))


def _walk(node: dict, prefix: Path) -> Iterator[tuple[Path, Any]]:
    for key, value in node.items():
        path = prefix + (str(key),)
        if isinstance(value, dict) and "grid_search" not in value:
            yield from _walk(value, path)
        else:
            yield path, value


def _param_from_domain(path: Path, value: Any) -> Param | None:
    from ray.tune.search.sample import Categorical, Domain, Float, Integer, LogUniform, Quantized, Uniform

    name = "/".join(path)
    if isinstance(value, dict):  # only grid_search dicts reach here
        raise ValueError(f"{name}: unsupported domain type grid_search; use tune.choice for a searcher")
    if isinstance(value, (list, tuple)) and any(isinstance(v, Domain) for v in value):
        raise ValueError(f"{name}: unsupported domain type list of domains; give each element its own key")
    if not isinstance(value, Domain):
        return None
    sampler = value.get_sampler()
    q = None
    if isinstance(sampler, Quantized):
        q, sampler = sampler.q, sampler.get_sampler()
    sampler_name = type(sampler).__name__
    if isinstance(value, Categorical) and isinstance(sampler, Uniform):
        return _choice_param(path, list(value.categories))
    if isinstance(value, (Float, Integer)) and isinstance(sampler, (Uniform, LogUniform)):
        return _numeric_param(path, value, log=isinstance(sampler, LogUniform), q=q)
    raise ValueError(
        f"{name}: unsupported domain type {type(value).__name__} with sampler {sampler_name}; "
        "supported: uniform, loguniform, quniform, qloguniform, randint, qrandint, lograndint, choice"
    )


def _numeric_param(path: Path, domain: Any, *, log: bool, q: float | None) -> Param:
    from ray.tune.search.sample import Integer

    name = "/".join(path)
    lower, upper = float(domain.lower), float(domain.upper)
    if not (math.isfinite(lower) and math.isfinite(upper)) or lower > upper:
        raise ValueError(f"{name}: bounds [{lower}, {upper}] must be finite with lower <= upper")
    if log and lower <= 0:
        raise ValueError(f"{name}: a log-scaled domain needs lower > 0, got {lower}")
    if isinstance(domain, Integer):
        # Ray: randint/lograndint exclude upper; qrandint includes it except for q == 1.
        inclusive_upper = upper if (q and q != 1) else upper - 1
        if inclusive_upper < lower:
            raise ValueError(f"{name}: integer domain [{int(lower)}, {int(upper)}) is empty")
        return Param(path=path, kind="int", lower=lower, upper=inclusive_upper, log=log, q=q if q and q != 1 else None)
    if q is not None and math.ceil(lower / q - 1e-9) * q > upper + 1e-9:
        raise ValueError(f"{name}: no multiple of q={q} lies in [{lower}, {upper}]")
    return Param(path=path, kind="float", lower=lower, upper=upper, log=log, q=q)


def _choice_param(path: Path, categories: list) -> Param:
    name = "/".join(path)
    if not categories:
        raise ValueError(f"{name}: choice needs at least one value")
    numeric = all(isinstance(c, numbers.Real) and not isinstance(c, bool) for c in categories)
    if numeric and all(math.isfinite(c) for c in categories):
        return Param(path=path, kind="ordinal", values=tuple(sorted(set(categories))))
    return Param(path=path, kind="categorical", values=tuple(dict.fromkeys(categories)))
