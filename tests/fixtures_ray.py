"""The embedded local Ray that Tune tests share: 2 CPUs, no dashboard, started once per test module.

A module that needs Ray set up differently says so in a module-level ``LOCAL_RAY_OPTIONS`` dict, read by the one
``local_ray`` fixture: ``env`` (variables set in this process while Ray runs, restored afterwards) and
``runtime_env`` (passed to ``ray.init``), e.g. ``LOCAL_RAY_OPTIONS = {"env": {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS":
"1"}}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest


@contextlib.contextmanager
def embedded_ray(*, env: dict[str, str] | None = None, runtime_env: dict[str, Any] | None = None) -> Iterator[Any]:
    """``ray.init(address="local")`` with 2 CPUs for the block; ``ray.shutdown()`` and ``env`` restored after."""
    import ray

    with pytest.MonkeyPatch.context() as patch:
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
        try:
            yield ray
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def local_ray(request) -> Iterator[Any]:
    """The ``ray`` module, with an embedded local Ray running for this test module (see ``LOCAL_RAY_OPTIONS``)."""
    options = getattr(request.module, "LOCAL_RAY_OPTIONS", {})
    with embedded_ray(**options) as ray:
        yield ray
