"""The embedded local Ray that Tune tests share: 2 CPUs, no dashboard, one per pytest process while it serves.

Starting Ray costs a few seconds of CPU (its GCS, raylet, agents and prestarted workers), so the modules that ask
for ``local_ray`` share one instance per pytest (xdist worker) process instead of starting one each. It is stopped
and started again only when it must be:

- a module asks for another ``runtime_env`` (see ``LOCAL_RAY_OPTIONS`` below);
- a test of a module that does not use ``local_ray`` is about to run (it may start Ray its own way, join a
  cluster, or check that nothing is running);
- a module left something holding Ray's resources after its tests (an actor or a placement group that did not
  end): the next module gets a fresh instance rather than a cluster with less room than it expects;
- something in a test shut Ray down (``run_search`` leaves an instance it did not start alone; a test may not).

``pytest_collection_modifyitems`` puts the modules that use ``local_ray`` first, in their collected order, so
each process serves them back to back.

A module that needs Ray set up differently says so in a module-level ``LOCAL_RAY_OPTIONS`` dict: ``env``
(variables set in this process while the module runs, restored afterwards: Tune's driver-side settings such as
``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS``; Ray's worker processes do not see them) and ``runtime_env`` (passed to
``ray.init``: what the workers see), e.g. ``LOCAL_RAY_OPTIONS = {"env": {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS":
"1"}}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

logger = logging.getLogger(__name__)

# After a module's tests, Tune's trial actors end asynchronously: how long their resources may take to return.
RESOURCES_RETURN_TIMEOUT_S = 30.0


class _SharedRay:
    """This process's embedded Ray, started for a ``runtime_env`` and kept across modules that ask for the same."""

    def __init__(self) -> None:
        self.key: str | None = None  # the runtime_env it was started with, as JSON; None: not running

    def acquire(self, runtime_env: dict[str, Any] | None):
        import ray

        key = json.dumps(runtime_env or {}, sort_keys=True)
        if self.key is not None and not ray.is_initialized():
            logger.info("the shared Ray was shut down by a test; starting it again")
            self.key = None
        if self.key is not None and self.key != key:
            self.release()
        if self.key is None:
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                     runtime_env=runtime_env)
            self.key = key
        return ray

    def after_module(self) -> None:
        """Keep Ray for the next module only if everything the module started has given its resources back."""
        import ray

        if self.key is None or not ray.is_initialized():
            self.key = None
            return
        from mritune.platform.infra.processes import wait_until

        try:
            wait_until(lambda: not _held_resources(ray), timeout_s=RESOURCES_RETURN_TIMEOUT_S,
                       what="the module's Ray resources coming back", interval_s=0.2)
        except TimeoutError:
            logger.warning("a module left Ray resources held (%s): the next module gets a fresh Ray",
                           _held_resources(ray))
            self.release()

    def release(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        self.key = None


def _held_resources(ray) -> dict[str, float]:
    """Schedulable resources in use now (total minus available): CPUs, GPUs and custom ones.

    Not memory or object store memory (objects a test still references, and Ray's own, hold those) nor Ray's
    per-node marker resources.
    """
    total, available = ray.cluster_resources(), ray.available_resources()
    return {name: amount - available.get(name, 0.0) for name, amount in total.items()
            if not name.startswith("node:") and name not in ("memory", "object_store_memory")
            and amount - available.get(name, 0.0) > 1e-9}


_SHARED = _SharedRay()
_RAY_MODULES: set[str] = set()  # the collected modules that use local_ray (filled at collection)


@contextlib.contextmanager
def embedded_ray(*, env: dict[str, str] | None = None, runtime_env: dict[str, Any] | None = None) -> Iterator[Any]:
    """The shared embedded Ray (2 CPUs) for the block, with ``env`` set in this process and restored after."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        ray = _SHARED.acquire(runtime_env)
        try:
            yield ray
        finally:
            _SHARED.after_module()


@pytest.fixture(scope="module")
def local_ray(request) -> Iterator[Any]:
    """The ``ray`` module, with the shared embedded Ray running for this test module (see ``LOCAL_RAY_OPTIONS``)."""
    options = getattr(request.module, "LOCAL_RAY_OPTIONS", {})
    with embedded_ray(**options) as ray:
        yield ray


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test of a module that does not use the shared Ray runs without it (it may start or join a Ray of its own).

    Decided per module, not per test: a module that holds ``local_ray`` keeps it for its tests that do not ask.
    """
    if _module_name(item) not in _RAY_MODULES:
        _SHARED.release()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _SHARED.release()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules that use ``local_ray`` first (a stable sort): each process serves them with one Ray."""
    _RAY_MODULES.update(_module_name(item) for item in items if "local_ray" in getattr(item, "fixturenames", ()))
    items.sort(key=lambda item: _module_name(item) not in _RAY_MODULES)


def _module_name(item: pytest.Item) -> str:
    module = getattr(item, "module", None)
    return module.__name__ if module is not None else ""
