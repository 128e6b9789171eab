"""Fault scenario 5 and the gate's failure path, against a real `mlflow server` on 127.0.0.1.

Scenario 5: eight registrations into one model name at once (threads, each with its own client, all hitting the
server together) end with consistent versions and aliases, the best one champion. The promotion gate reads the
champion fail-closed: only "no such alias" means there is none.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from mritune.platform.registry.promotion import (
    CHALLENGER, CHAMPION, PENDING, PROMOTION_TAG, Interval, decide_alias, promote,
)
from mritune.trainables.errors import ServiceFailed
from tests.fixtures_processes import free_ports

# Test macro-F1 of the eight concurrent registrations, in the order they start; the best is neither first nor last.
SCORES = [0.61, 0.55, 0.72, 0.93, 0.48, 0.70, 0.88, 0.66]


def _new_version(client, model: str, *, f1: float, fingerprint: str = "fp-a", interval: Interval | None = None) -> str:
    """A version created as mritune's registry creates one: pending, with its gate metric and fingerprint tags (and
    its re-run interval's tags, if any)."""
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    tags = {"dataset_fingerprint": fingerprint, "metric.test_macro_f1": repr(f1), PROMOTION_TAG: PENDING,
            **(interval.tags() if interval else {})}
    return client.create_model_version(model, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                       tags=tags).version


def _register_concurrently(url: str, model: str, scores: list[float],
                           intervals: list[Interval] | None = None) -> dict[str, tuple]:
    """Each thread creates its version and runs the gate at once; returns version -> (score, alias, previous)."""
    from mlflow.tracking import MlflowClient

    start = threading.Barrier(len(scores))
    outcomes: dict[str, tuple] = {}
    errors: list[BaseException] = []

    def register(f1: float, interval: Interval | None) -> None:
        client = MlflowClient(url)  # one client per registration, as separate searches have
        try:
            start.wait(timeout=60)
            version = _new_version(client, model, f1=f1, interval=interval)
            alias, previous, _ = promote(client, model, version, fingerprint="fp-a", value=f1,
                                         metric="test_macro_f1", mode="max", interval=interval)
            outcomes[version] = (f1, alias, previous)
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(f1, interval))
               for f1, interval in zip(scores, intervals or [None] * len(scores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return outcomes


def test_concurrent_registrations_leave_the_best_as_champion(mlflow_server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    model = f"fault-concurrent-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    incumbent = _new_version(client, model, f1=0.60)
    assert promote(client, model, incumbent, fingerprint="fp-a", value=0.60, metric="test_macro_f1",
                   mode="max")[0] == CHAMPION

    outcomes = _register_concurrently(mlflow_server, model, SCORES)

    assert len(outcomes) == len(SCORES) and sorted(f1 for f1, _, _ in outcomes.values()) == sorted(SCORES)
    champion = client.get_model_version_by_alias(model, CHAMPION)
    assert float(champion.tags["metric.test_macro_f1"]) == max(SCORES)
    # The gate ran one registration at a time, in version order: each decision is the one a sequential run of
    # the same versions would make, against the champion its predecessor left.
    best_so_far, holder = 0.60, incumbent
    for version in sorted(outcomes, key=int):
        f1, alias, previous = outcomes[version]
        assert previous == holder, (version, previous, holder)
        assert alias == (CHAMPION if f1 > best_so_far else CHALLENGER), (version, f1, best_so_far)
        if f1 > best_so_far:
            best_so_far, holder = f1, version
    tags = {v.version: v.tags[PROMOTION_TAG] for v in client.search_model_versions(f"name='{model}'")}
    assert PENDING not in tags.values(), tags


def test_a_registry_error_is_not_read_as_no_champion(mlflow_server, monkeypatch):
    """The gate fails closed: a registry that cannot answer stops the registration instead of promoting."""
    from mlflow.tracking import MlflowClient

    model = f"fault-gate-{uuid.uuid4().hex[:8]}"
    MlflowClient(mlflow_server).create_registered_model(model)
    # A live server without the alias: "not found" means no champion yet.
    assert decide_alias(MlflowClient(mlflow_server), model, fingerprint="fp", value=0.5, metric="m",
                        mode="max")[:2] == (CHAMPION, None)
    # The same question to a registry that does not answer (nothing listens on the port): an error, not a champion.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    (port,) = free_ports(1)
    with pytest.raises(ServiceFailed, match=f"could not read {model}@champion.*aliases are unchanged"):
        decide_alias(MlflowClient(f"http://127.0.0.1:{port}"), model, fingerprint="fp", value=0.5, metric="m",
                     mode="max")


def test_a_pending_version_left_by_a_dead_registration_stops_holding_the_queue(mlflow_server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    model = f"fault-stale-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    _new_version(client, model, f1=0.9)  # its registration "died": it stays pending
    mine = _new_version(client, model, f1=0.5)
    alias, _, _ = promote(client, model, mine, fingerprint="fp-a", value=0.5, metric="test_macro_f1", mode="max",
                          stale_after_s=0.0)
    assert alias == CHAMPION and client.get_model_version(model, mine).tags[PROMOTION_TAG] == "no champion yet"


# Eight concurrent registrations that carry re-run intervals (mean, low, high of test macro-F1), in start order.
# Under the interval rule a better mean is not enough: v(0.74) beats the incumbent's mean 0.60 only by its lower
# bound 0.66, while v(0.93) with bound 0.55 stays challenger; the replay decides who ends champion.
INTERVALS = [(0.61, 0.55, 0.67), (0.74, 0.66, 0.80), (0.93, 0.55, 0.99), (0.70, 0.64, 0.76),
             (0.81, 0.75, 0.86), (0.78, 0.70, 0.85), (0.66, 0.62, 0.70), (0.88, 0.77, 0.95)]


def test_concurrent_registrations_with_intervals_are_gated_one_at_a_time_on_intervals(mlflow_server):
    from mlflow.tracking import MlflowClient

    from tests.faults.checker import replay_gate

    client = MlflowClient(mlflow_server)
    model = f"fault-intervals-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    incumbent = _new_version(client, model, f1=0.60, interval=Interval(mean=0.60, low=0.52, high=0.68))
    promote(client, model, incumbent, fingerprint="fp-a", value=0.60, metric="test_macro_f1", mode="max")
    intervals = [Interval(mean=m, low=lo, high=hi) for m, lo, hi in INTERVALS]

    outcomes = _register_concurrently(mlflow_server, model, [i.mean for i in intervals], intervals=intervals)

    assert len(outcomes) == len(intervals)
    mean, holder = 0.60, incumbent
    for version in sorted(outcomes, key=int):
        f1, alias, previous = outcomes[version]
        low = next(i.low for i in intervals if i.mean == f1)
        assert previous == holder, (version, previous, holder)
        assert alias == (CHAMPION if low > mean else CHALLENGER), (version, f1, low, mean)
        if low > mean:
            mean, holder = f1, version
    champion = client.get_model_version_by_alias(model, CHAMPION)
    versions = client.search_model_versions(f"name='{model}'")
    assert str(champion.version) == str(holder) == replay_gate(versions, gate_metric="test_macro_f1", gate_mode="max")
    assert float(champion.tags["rerun.mean"]) != 0.93, "the best mean, with the widest interval, never takes it"
    assert PENDING not in {v.tags[PROMOTION_TAG] for v in versions}
