"""Drive a Ray Tune searcher with Ray's own ASHA rule, without Tune's event loop: 4 workers, one epoch per tick.

Used by ``multifidelity.py --backend simulated`` for the many-seed study: on a shared 2-core machine one real
Tune run of the study costs 15–45 s, nearly all of it Tune's per-trial and per-result overhead, not the searcher.
Here the searcher sees the same calls as under Tune (``suggest``, ``on_trial_result`` for every epoch,
``on_trial_complete`` with the last result) and stopping decisions come from Ray's ``_Bracket.on_result`` (the
code ``ASHAScheduler`` runs), plus ASHA's stop at ``max_t``. Workers advance round-robin, so trials interleave as
under 4 equally fast workers. Wall time is the searcher's own compute time only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class _TrialRef:
    trial_id: str  # all _Bracket reads from a trial


def simulate(searcher, *, report: Callable[[dict, int], float], max_t: int, grace_period: int,
             reduction_factor: float, budget: int, workers: int,
             on_result: Callable[[dict, dict], None]) -> float:
    """Run until ``budget`` epochs were trained; ``report(config, epoch) -> loss`` is the objective (minimized).

    ``on_result(config, result)`` sees every result, as a Tune callback would. Returns the elapsed seconds.
    """
    from ray.tune.schedulers.async_hyperband import _Bracket

    bracket = _Bracket(grace_period, max_t, reduction_factor, s=0)
    running: dict[str, list] = {}  # trial id -> [config, epochs trained]
    epochs, next_id, start = 0, 0, time.perf_counter()
    while epochs < budget:
        while len(running) < workers:
            trial_id = f"sim{next_id:05d}"
            next_id += 1
            running[trial_id] = [searcher.suggest(trial_id), 0]
        for trial_id in list(running):
            config, trained = running[trial_id]
            trained += 1
            running[trial_id][1] = trained
            result = {"loss": report(config, trained), "training_iteration": trained}
            epochs += 1
            on_result(config, result)
            searcher.on_trial_result(trial_id, result)
            decision = bracket.on_result(_TrialRef(trial_id), trained, -result["loss"])  # ASHA maximizes rewards
            if decision == "STOP" or trained >= max_t:
                searcher.on_trial_complete(trial_id, result)
                del running[trial_id]
            if epochs >= budget:
                break
    return time.perf_counter() - start
