"""One replayed search of a study method on a table: the one path the study, its live check and the tests share."""

from __future__ import annotations

import tempfile

from study.methods import WORKERS, build_method, method_spec, parse_method
from study.simulate import first_points, prepare_searcher, simulate


def run_method(table, name: str, seed: int, *, budget_fte: int, backend: str = "simulated", restricted: bool = True,
               time_scale: float = 0.1, storage: str | None = None) -> dict:
    """Build method ``name`` from the quick spec for study seed ``seed`` and replay ``table`` until the trials
    trained ``budget_fte`` full trainings' worth of epochs; returns the trace and counts (``simulate``'s)."""
    spec = method_spec(parse_method(name), seed=seed, max_t=table.max_t,
                       first_points=first_points(table, seed, WORKERS, restricted=restricted),
                       space=table.header["space"])
    searcher, scheduler, space = build_method(spec)
    prepare_searcher(searcher, table, space, restricted=restricted)
    budget = budget_fte * table.max_t
    if backend == "simulated":
        return simulate(table, searcher, scheduler, seed=seed, budget_epochs=budget, workers=WORKERS)
    from study.tune_backend import run_tune

    with tempfile.TemporaryDirectory(prefix="mritune-study-") as scratch:
        return run_tune(table, searcher, scheduler, spec.fixed_config(), seed=seed, budget_epochs=budget,
                        workers=WORKERS, time_scale=time_scale, storage=storage or scratch, name=f"study-{seed}")
