"""Fixtures of the search tests: a small local Ray for the Tuner tests."""

import pytest


@pytest.fixture(scope="module")
def local_ray():
    import ray

    # Tune's result files are not needed here; the variable is restored so later modules' Tuners write them.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield ray
        finally:
            ray.shutdown()
