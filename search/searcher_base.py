"""The Ray Tune ``Searcher`` plumbing every mritune searcher shares; subclasses only propose unit-cube points.

A subclass implements ``_propose(X, y, X_pending, rng) -> np.ndarray`` returning candidate points in
``[0, 1]^d`` ranked best first, for a MINIMIZED objective (``y``) with running trials at ``X_pending``. Everything
else — space handling, initial random design, points_to_evaluate, result filtering, duplicates, state — lives here.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np

# Subclassing Tune's Searcher needs Ray at class definition; only the searcher modules import this one, and the
# factory imports those lazily, so `import mritune.search.space` or the factory stays light.
from ray.tune.search import Searcher

from mritune.search.model_fit import blas_limit as _blas_limit
from mritune.search.observations import STATE_VERSION, ObservationLog, check_state
from mritune.search.space import SearchSpace
from mritune.search.space_ray import convert_ray_space

_DUPLICATE_TOL = 1e-9
# Observations a model-based searcher fits at most (search/fit_subset.py); chosen by benchmarks/searcher_scale.py.
DEFAULT_MAX_FIT_POINTS = 200

logger = logging.getLogger(__name__)


def check_option(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    """A searcher's string option must be one of ``allowed``: raise naming the option and the choices."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def check_max_fit_points(value: Any) -> None:
    """``max_fit_points`` is an integer >= 10, or None (fit every observation)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 10):
        raise ValueError(f"max_fit_points must be an integer >= 10 or None, got {value!r}")


class UnitCubeSearcher(Searcher):
    """Base class: ask/tell bookkeeping, random initial design and versioned JSON state."""

    def __init__(self, *, space: dict | SearchSpace | None = None, metric: str | None = None,
                 mode: str | None = None, points_to_evaluate: list[dict] | None = None, n_initial_points: int = 5,
                 random_state_seed: int | None = None, blas_threads: int | None = 1) -> None:
        if mode not in (None, "min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if not isinstance(n_initial_points, int) or n_initial_points < 1:
            raise ValueError(f"n_initial_points must be an integer >= 1, got {n_initial_points!r}")
        super().__init__(metric=metric, mode=mode)
        self._space = self._as_space(space) if space else None
        self._queue = [dict(p) for p in (points_to_evaluate or [])]
        self._n_initial = n_initial_points
        self._seed = random_state_seed
        self._rng = np.random.default_rng(random_state_seed)
        self._blas_threads = blas_threads
        self._log = ObservationLog()
        self._n_suggested = 0
        self._allowed: np.ndarray | None = None  # restrict_to's configurations, in the unit cube
        # The constructor's JSON options, saved with the state so a searcher built with no arguments restores the
        # same algorithm (subclasses add theirs).
        self._options: dict[str, Any] = {"n_initial_points": n_initial_points, "blas_threads": blas_threads}

    @staticmethod
    def _as_space(space: dict | SearchSpace) -> SearchSpace:
        return space if isinstance(space, SearchSpace) else convert_ray_space(space)

    # --------------------------------------------------------------------------------------------- Tune hooks

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        if self._space is not None:
            return False
        self._space = convert_ray_space(config)
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        return True

    def suggest(self, trial_id: str) -> dict | None:
        self._check_ready()
        if self._queue:
            config = self._space.with_constants(self._queue.pop(0))
        else:
            config = self._space.decode(self._next_point())
        self._log.add_pending(trial_id, config)
        self._n_suggested += 1
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Intermediate results are not modelled; the final (last-rung) result arrives at completion."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if self._log.finish(trial_id, result, self._metric, error=error) is None:
            # Not suggested by this searcher (or already finished): its result cannot join the model's data.
            logger.warning("%s: ignoring the result of unknown trial %s (not suggested by this searcher)",
                           type(self).__name__, trial_id)

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        self._check_ready()
        config = self._space.with_constants(parameters)
        self._log.add_external(config, value, error=error)

    def restrict_to(self, configs: list[dict]) -> None:
        """Suggest only these configurations, each once before any is suggested again.

        For a search over a table of recorded results (a tabulated benchmark, ``mritune.search.replay``): a
        proposal in the unit cube becomes the nearest configuration of the table that is not yet running or
        finished, as Syne Tune's ``restrict_configurations`` does, so that the model learns from the
        configuration that ran and never repeats one. Call it once the space is known.

        Args:
            configs: The allowed configurations (searched keys), each inside the space.

        Raises:
            ValueError: No search space yet, an empty list, or a configuration outside the space.
        """
        if self._space is None:
            raise ValueError(f"{type(self).__name__}: no search space yet; call restrict_to after set_search_properties")
        if not configs:
            raise ValueError("restrict_to needs at least one configuration")
        self._allowed = np.vstack([self._space.encode(config) for config in configs])

    @property
    def observations(self) -> list[dict]:
        """Read-only view: one dict per finished trial (config, value in the user's sign, status)."""
        return [o.as_dict() for o in self._log.finished]

    # --------------------------------------------------------------------------------------------- proposing

    def _next_point(self) -> np.ndarray:
        X, y = self._log.minimization_data(self._space.encode, self._mode)
        # The first n_initial suggestions are random even if some finished early, so parallel workers start spread.
        if self._n_suggested < self._n_initial or len(y) < 2:
            return self._random_point()
        X_pending = self._log.pending_design(self._space.encode)
        with _blas_limit(self._blas_threads):
            candidates = self._propose(X, y, X_pending, self._rng)
        return self._first_new(candidates, X, X_pending)

    def _first_new(self, candidates: np.ndarray, X: np.ndarray, X_pending: np.ndarray | None) -> np.ndarray:
        """First candidate whose config is neither observed nor running (discrete spaces make ties common);
        with ``restrict_to``, the free allowed configuration nearest to the best candidate."""
        if self._allowed is not None:
            free = self._free_allowed()
            return free[int(np.argmin(np.linalg.norm(free - candidates[0], axis=1)))]
        taken = X if X_pending is None else np.vstack([X, X_pending])
        for candidate in candidates:
            snapped = self._space.snap(candidate)
            if np.min(np.abs(taken - snapped).max(axis=1)) > _DUPLICATE_TOL:
                return snapped
        return self._random_point()

    def _random_point(self) -> np.ndarray:
        """A uniform draw: in the unit cube, or among the free configurations of ``restrict_to``."""
        if self._allowed is None:
            return self._space.sample_unit(self._rng)[0]
        free = self._free_allowed()
        return free[int(self._rng.integers(len(free)))]

    def _free_allowed(self) -> np.ndarray:
        """The allowed configurations not yet suggested (all of them again once each has been)."""
        suggested = [o.config for o in self._log.finished] + list(self._log.pending.values())
        if not suggested:
            return self._allowed
        taken = np.vstack([self._space.encode(config) for config in suggested])
        distance = np.abs(self._allowed[:, None, :] - taken[None, :, :]).max(axis=2).min(axis=1)
        free = self._allowed[distance > _DUPLICATE_TOL]
        return free if len(free) else self._allowed

    def _propose(self, X: np.ndarray, y: np.ndarray, X_pending: np.ndarray | None,
                 rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _check_ready(self) -> None:
        name = type(self).__name__
        if self._space is None:
            raise ValueError(f"{name}: no search space; pass space=... or Tuner(param_space=...)")
        if not self._metric or self._mode not in ("min", "max"):
            raise ValueError(f"{name}: metric and mode ('min' or 'max') must be set, got {self._metric!r}, "
                             f"{self._mode!r}; pass them to the searcher or to TuneConfig")

    # ------------------------------------------------------------------------------------------------- state

    def get_state(self) -> dict:
        """A small versioned JSON dict: observations, the random generator, the space and the options (never the
        fitted model), enough for ``type(self)()`` to go on (``set_state``)."""
        return {"version": STATE_VERSION, "searcher": type(self).__name__, "metric": self._metric,
                "mode": self._mode, "n_suggested": self._n_suggested, "queue": self._queue,
                "rng": self._rng.bit_generator.state, **self._log.to_state(), "model": self._model_state(),
                "space": self._space.to_state() if self._space is not None else None, "options": self._options}

    def set_state(self, state: dict) -> None:
        """Continue from ``get_state``'s dict. A searcher without a space yet (``S()``, as in Ray's contract) takes
        the saved space and the saved options, as Ray's own searchers do (their state is the whole object); one
        that has a space (given to it, or by Tune's ``set_search_properties``) keeps its own space and options.
        Version-1 states carry neither."""
        check_state(state, type(self).__name__)
        options = state.get("options")
        if self._space is None and options is not None and options != self._options:
            self._reconstruct(options)
        if self._space is None and state.get("space") is not None:
            self._space = SearchSpace.from_state(state["space"])
        self._metric = state["metric"] or self._metric
        self._mode = state["mode"] or self._mode
        self._n_suggested = int(state["n_suggested"])
        self._queue = list(state["queue"])
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state["rng"]
        self._log = ObservationLog.from_state(state)
        self._set_model_state(state.get("model") or {})

    def save(self, checkpoint_path: str) -> None:
        tmp = f"{checkpoint_path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.get_state(), fh, default=_not_json)
        os.replace(tmp, checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        if not os.path.exists(checkpoint_path):
            raise FileNotFoundError(f"no searcher state at {checkpoint_path}; pass the path given to save()")
        with open(checkpoint_path, encoding="utf-8") as fh:
            try:
                state = json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{checkpoint_path}: not a JSON searcher state ({exc})") from None
        self.set_state(state)

    def _reconstruct(self, options: dict) -> None:
        """Build this searcher again with the saved ``options`` (space, metric and mode kept); ``set_state`` then
        fills in the rest."""
        type(self).__init__(self, space=self._space, metric=self._metric, mode=self._mode,
                            **self._constructor_extras(), **options)

    def _constructor_extras(self) -> dict:
        """Constructor arguments that are not JSON options but must survive ``_reconstruct`` (subclasses)."""
        return {}

    def _model_state(self) -> dict:
        """Small JSON hints a subclass wants back after restore (e.g. kernel hyperparameters); not the model."""
        return {}

    def _set_model_state(self, state: dict) -> None:
        pass


def _not_json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"searcher state holds a {type(value).__name__} ({value!r}), which JSON cannot store; "
                    "use numbers, strings, booleans or None as choice values")
