"""Several trials on one GPU: what Ray runs together on a fractional GPU share, and the memory cap each trial gets.

These machines have no GPU: Ray is started with one logical GPU (``num_gpus=1``), which it schedules exactly as a
real one (it sets ``CUDA_VISIBLE_DEVICES`` and hands out fractions); TensorFlow then finds no device, so the cap is
checked as computed from the trial's share. ``benchmarks/gpu_check.py`` runs the same on a real GPU.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mritune.trainables.gpu_share import CONTEXT_RESERVE_MB, gpu_memory_limit_mb
from mritune.trainables.runtime import configure_runtime

H100_MB = 81559  # nvidia-smi's memory.total of an 80 GB H100


def test_the_cap_is_the_share_of_the_device_less_the_cuda_context():
    assert gpu_memory_limit_mb(0.25, H100_MB) == int(0.25 * H100_MB) - CONTEXT_RESERVE_MB
    assert gpu_memory_limit_mb(0.5, 16384) == 8192 - CONTEXT_RESERVE_MB
    assert gpu_memory_limit_mb(1, H100_MB) is None and gpu_memory_limit_mb(2, H100_MB) is None
    assert gpu_memory_limit_mb(None, H100_MB) is None and gpu_memory_limit_mb(0, H100_MB) is None
    with pytest.raises(ValueError, match="leaves .* MB for TensorFlow .* ask for a larger share"):
        gpu_memory_limit_mb(0.05, 8192)


def test_without_a_gpu_nothing_is_capped():
    settings = configure_runtime(cpus=1, gpus=0.25)
    assert settings.gpus == 0 and settings.gpu_memory_limit_mb is None and not settings.mixed_precision


def _quarter_gpu_trial(config: dict) -> None:
    """Waits until four trials have started (so four must run together), then reports what it was given."""
    from ray import tune

    from mritune.trainables.tune_trainables import trial_gpus

    folder = Path(config["folder"])
    started = time.time()
    (folder / f"{tune.get_context().get_trial_id()}.started").touch()
    while len(list(folder.glob("*.started"))) < 4:
        if time.time() - started > 120:
            raise TimeoutError("fewer than four quarter-GPU trials ran at once")
        time.sleep(0.05)
    share = trial_gpus()
    tune.report({"share": share, "limit_mb": gpu_memory_limit_mb(share, H100_MB), "started": started,
                 "ended": time.time(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")})


@pytest.fixture(scope="module")
def one_logical_gpu():
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_four_quarter_gpu_trials_share_one_device_and_each_is_capped_to_its_quarter(one_logical_gpu, tmp_path):
    from ray import tune

    tuner = tune.Tuner(
        tune.with_resources(_quarter_gpu_trial, {"cpu": 0.25, "gpu": 0.25}),
        param_space={"folder": str(tmp_path), "i": tune.grid_search(list(range(6)))},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), verbose=0),
    )
    results = [r.metrics for r in tuner.fit()]
    assert len(results) == 6 and all(r.get("share") == 0.25 for r in results), results
    assert {r["limit_mb"] for r in results} == {int(0.25 * H100_MB) - CONTEXT_RESERVE_MB}
    assert {r["cuda_visible_devices"] for r in results} == {"0"}, "all on the one device"
    events = sorted([(r["started"], 1) for r in results] + [(r["ended"], -1) for r in results])
    running, most = 0, 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert most == 4, f"at most four quarter-GPU trials at once on one GPU, and four did run together ({most})"
