"""The search spec's YAML space format → Ray Tune domains (``search.space`` of a spec, see :func:`parse_space`).

Errors name the key path, e.g. ``search.space.dropout: ...``.
"""

from __future__ import annotations

import numbers
from typing import Any

YAML_DOMAINS = ("uniform", "loguniform", "quniform", "qloguniform", "randint", "qrandint", "choice")
_YAML_ARITY = {"uniform": 2, "loguniform": 2, "quniform": 3, "qloguniform": 3, "randint": 2, "qrandint": 3}


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
