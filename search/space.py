"""The unit-cube encoding the model-based searchers share: :class:`SearchSpace` and its inverse.

Every searcher in this package proposes points in ``[0, 1]^d`` and lets :class:`SearchSpace` turn them into
configs (``decode``) and configs back into points (``encode``), so log scaling, quantization, integers and
categories are handled once, here:

- ``uniform``/``quniform``: linear in the cube, rounded to multiples of ``q`` on decode;
- ``loguniform``/``qloguniform``: the cube coordinate is ``log(x)`` rescaled (the model sees log space);
- ``randint``/``qrandint``/``lograndint``: one coordinate split into equal cells, one per allowed value
  (log-spaced cells for ``lograndint``), so uniform points give uniform integers;
- ``choice`` over numbers: ordinal, one cell per sorted value (neighbouring values are neighbours for the GP);
- ``choice`` over anything else: one-hot coordinates, decoded by argmax.

The other two steps of a search space live beside this one: ``space_yaml`` (the spec's YAML → Ray Tune domains)
and ``space_ray`` (Ray Tune domains → a :class:`SearchSpace`). All raise ``ValueError`` naming the key path.
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

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

    def to_state(self) -> dict:
        """The space as a small JSON dict (a searcher's saved state carries it; ``from_state`` reads it back)."""
        return {"params": [{"path": list(p.path), "kind": p.kind, "lower": p.lower, "upper": p.upper, "log": p.log,
                            "q": p.q, "values": list(p.values)} for p in self.params],
                "constants": [[list(path), value] for path, value in self.constants]}

    @classmethod
    def from_state(cls, state: dict) -> "SearchSpace":
        """The space ``to_state`` wrote."""
        params = tuple(Param(path=tuple(p["path"]), kind=p["kind"], lower=p["lower"], upper=p["upper"],
                             log=p["log"], q=p["q"], values=tuple(p["values"])) for p in state["params"])
        return cls(params=params, constants=tuple((tuple(path), value) for path, value in state["constants"]))

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
