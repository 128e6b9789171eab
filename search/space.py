"""Search spaces: the YAML spec format → Ray Tune domains → a unit-cube encoding the model-based searchers share.

Every searcher in this package proposes points in ``[0, 1]^d`` and lets :class:`SearchSpace` turn them into
configs, so log scaling, quantization, integers and categories are handled once, here:

- ``uniform``/``quniform``: linear in the cube, rounded to multiples of ``q`` on decode;
- ``loguniform``/``qloguniform``: the cube coordinate is ``log(x)`` rescaled (the model sees log space);
- ``randint``/``qrandint``/``lograndint``: one coordinate split into equal cells, one per allowed value
  (log-spaced cells for ``lograndint``), so uniform points give uniform integers;
- ``choice`` over numbers: ordinal, one cell per sorted value (neighbouring values are neighbours for the GP);
- ``choice`` over anything else: one-hot coordinates, decoded by argmax.

Both conversions are pure functions that raise ``ValueError`` naming the key path and the offending type.
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

YAML_DOMAINS = ("uniform", "loguniform", "quniform", "qloguniform", "randint", "qrandint", "choice")
_YAML_ARITY = {"uniform": 2, "loguniform": 2, "quniform": 3, "qloguniform": 3, "randint": 2, "qrandint": 3}

Path = tuple[str, ...]


@dataclass(frozen=True)
class Param:
    """One searchable parameter. ``kind`` is float | int | ordinal | categorical."""

    path: Path
    kind: str
    lower: float = 0.0
    upper: float = 1.0
    log: bool = False
    q: float | None = None
    values: tuple = ()

    @property
    def width(self) -> int:
        """Number of unit-cube coordinates this parameter occupies."""
        return len(self.values) if self.kind == "categorical" else 1

    @property
    def name(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True)
class SearchSpace:
    """Parameters plus constant entries; encodes configs to the unit cube and back."""

    params: tuple[Param, ...]
    constants: tuple[tuple[Path, Any], ...] = ()

    @property
    def dim(self) -> int:
        return sum(p.width for p in self.params)

    def sample_unit(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        return rng.random((n, self.dim))

    def decode(self, u: np.ndarray) -> dict:
        """Unit-cube vector → nested config dict (constants included)."""
        u = np.clip(np.asarray(u, dtype=float).reshape(-1), 0.0, 1.0)
        config: dict = {}
        for path, value in self.constants:
            _set_path(config, path, value)
        start = 0
        for p in self.params:
            _set_path(config, p.path, _decode_param(p, u[start:start + p.width]))
            start += p.width
        return config

    def encode(self, config: dict) -> np.ndarray:
        """Nested config dict → unit-cube vector. Raises ValueError for a missing or out-of-space value."""
        parts = []
        for p in self.params:
            try:
                value = _get_path(config, p.path)
            except KeyError:
                raise ValueError(f"{p.name}: missing from config; give a value for every searched key") from None
            parts.append(_encode_param(p, value))
        return np.concatenate(parts) if parts else np.zeros(0)

    def with_constants(self, config: dict) -> dict:
        """A user-given config (points_to_evaluate) validated against the space, constants filled in."""
        self.encode(config)
        full = copy.deepcopy(config)
        for path, value in self.constants:
            node = full
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node.setdefault(path[-1], value)
        return full

    def snap(self, u: np.ndarray) -> np.ndarray:
        """Project a cube point onto the representative of the config it decodes to."""
        return self.encode(self.decode(u))


# --------------------------------------------------------------------------------------------- per-parameter codec


def _int_grid(p: Param) -> np.ndarray:
    step = int(p.q or 1)
    first = math.ceil(p.lower / step) * step
    return np.arange(first, int(p.upper) + 1, step)


def _float_grid_bounds(p: Param) -> tuple[float, float]:
    return math.ceil(p.lower / p.q - 1e-9) * p.q, math.floor(p.upper / p.q + 1e-9) * p.q


def _cell(u: float, n: int) -> int:
    return min(int(u * n), n - 1)


def _decode_param(p: Param, u: np.ndarray) -> Any:
    if p.kind == "categorical":
        return p.values[int(np.argmax(u))]
    x = float(u[0])
    if p.kind == "ordinal":
        return p.values[_cell(x, len(p.values))]
    if p.kind == "int":
        if p.log and not p.q:
            lo, hi = math.log(p.lower), math.log(p.upper + 1)
            return int(min(max(math.floor(math.exp(lo + x * (hi - lo))), p.lower), p.upper))
        grid = _int_grid(p)
        return int(grid[_cell(x, len(grid))])
    if p.log:
        value = math.exp(math.log(p.lower) + x * (math.log(p.upper) - math.log(p.lower)))
    else:
        value = p.lower + x * (p.upper - p.lower)
    if p.q:
        lo, hi = _float_grid_bounds(p)
        value = min(max(round(value / p.q) * p.q, lo), hi)
    return float(min(max(value, p.lower), p.upper))  # exp/log round-off must not leave the bounds


def _encode_param(p: Param, value: Any) -> np.ndarray:
    if p.kind == "categorical":
        if value not in p.values:
            raise ValueError(f"{p.name}: {value!r} is not one of the choices {list(p.values)}")
        one_hot = np.zeros(len(p.values))
        one_hot[p.values.index(value)] = 1.0
        return one_hot
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{p.name}: expected a number, got {type(value).__name__} {value!r}")
    if p.kind == "ordinal":
        if value not in p.values:
            raise ValueError(f"{p.name}: {value!r} is not one of the choices {list(p.values)}")
        return np.array([(p.values.index(value) + 0.5) / len(p.values)])
    if p.kind == "int":
        if p.log and not p.q:
            lo, hi = math.log(p.lower), math.log(p.upper + 1)
            return np.array([(math.log(min(max(value, p.lower), p.upper) + 0.5) - lo) / (hi - lo)])
        grid = _int_grid(p)
        index = int(np.argmin(np.abs(grid - value)))
        return np.array([(index + 0.5) / len(grid)])
    value = min(max(float(value), p.lower), p.upper)
    if p.log:
        return np.array([(math.log(value) - math.log(p.lower)) / (math.log(p.upper) - math.log(p.lower))])
    return np.array([(value - p.lower) / (p.upper - p.lower) if p.upper > p.lower else 0.5])


# ------------------------------------------------------------------------------------ Ray Tune domains → SearchSpace


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


# ------------------------------------------------------------------------------------------ YAML spec → Ray domains


def parse_space(spec: dict, *, key_prefix: str = "search.space") -> dict:
    """Convert the YAML spec format into Ray Tune domains.

    ``{loguniform: [1e-5, 1e-2]}``, ``{choice: [64, 128]}``, ``{uniform: [a, b]}``, ``{quniform: [a, b, q]}``,
    ``{qloguniform: [a, b, q]}``, ``{randint: [a, b]}``, ``{qrandint: [a, b, q]}``; nested dicts for nested keys;
    plain values pass through as constants. Errors name the key path, e.g. ``search.space.dropout: ...``.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"{key_prefix}: expected a mapping of parameter names, got {type(spec).__name__}")
    return {key: _parse_entry(value, f"{key_prefix}.{key}") for key, value in spec.items()}


def _parse_entry(value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (domain_name, args), = value.items()
        if domain_name in YAML_DOMAINS:
            return _yaml_domain(domain_name, args, where)
        if not isinstance(args, dict):
            raise ValueError(f"{where}: unknown domain {domain_name!r}; expected one of {', '.join(YAML_DOMAINS)}")
    return parse_space(value, key_prefix=where)


def _yaml_domain(domain_name: str, args: Any, where: str) -> Any:
    from ray import tune

    if domain_name == "choice":
        if not isinstance(args, list) or not args:
            raise ValueError(f"{where}: choice needs a non-empty list of values, e.g. {{choice: [64, 128]}}")
        return tune.choice(args)
    arity = _YAML_ARITY[domain_name]
    if not isinstance(args, list) or len(args) != arity:
        raise ValueError(f"{where}: {domain_name} needs a list of {arity} numbers, got {args!r}")
    if not all(isinstance(a, numbers.Real) and not isinstance(a, bool) for a in args):
        raise ValueError(f"{where}: {domain_name} arguments must be numbers, got {args!r}")
    if args[0] >= args[1]:
        raise ValueError(f"{where}: {domain_name} needs lower < upper, got {args[0]} and {args[1]}")
    if domain_name in ("loguniform", "qloguniform") and args[0] <= 0:
        raise ValueError(f"{where}: {domain_name} needs a lower bound > 0, got {args[0]}")
    if arity == 3 and args[2] <= 0:
        raise ValueError(f"{where}: {domain_name} needs q > 0, got {args[2]}")
    if domain_name in ("randint", "qrandint") and not all(float(a).is_integer() for a in args):
        raise ValueError(f"{where}: {domain_name} needs integer arguments, got {args!r}")
    factory = getattr(tune, domain_name)
    if domain_name in ("randint", "qrandint"):
        return factory(*(int(a) for a in args))
    return factory(*(float(a) for a in args))


# ------------------------------------------------------------------------------------------------- nested-key access


def _set_path(config: dict, path: Path, value: Any) -> None:
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _get_path(config: dict, path: Path) -> Any:
    node = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise KeyError(key)
        node = node[key]
    return node
