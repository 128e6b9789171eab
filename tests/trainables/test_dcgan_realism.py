"""Realism with a floor (trainables/dcgan/realism.py): the Fréchet distance, the feature network's disk cache
(reused, and one file for two processes asking at once) and the real-vs-real floors, on the tiny synthetic data."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import pytest

from mritune.trainables.dcgan.realism import frechet_distance
from tests.trainables.training_helpers import few_tf_threads


@pytest.fixture(scope="module", autouse=True)
def _threads():
    few_tf_threads()


def _gaussian_features(count: int = 400, dim: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, dim)) @ rng.standard_normal((dim, dim))  # correlated features


def test_fd_of_a_set_with_itself_is_zero():
    features = _gaussian_features()
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_fd_grows_with_a_shift_as_the_squared_distance_of_the_means():
    features = _gaussian_features()
    shifts = [0.5, 1.0, 2.0]
    direction = np.ones(features.shape[1]) / np.sqrt(features.shape[1])
    distances = [frechet_distance(features, features + size * direction) for size in shifts]
    # Same covariance: FD is exactly |mu_a - mu_b|^2.
    assert distances == pytest.approx([size**2 for size in shifts], rel=1e-6)


def test_fd_of_a_scaled_set_is_the_closed_form():
    features = _gaussian_features()
    covariance_trace = np.trace(np.cov(features, rowvar=False))
    centred = features - features.mean(axis=0)
    # cov(s x) = s^2 S, so tr(S + s^2 S - 2 s S) = (1 - s)^2 tr(S); the means stay equal.
    assert frechet_distance(centred, 3.0 * centred) == pytest.approx(4.0 * covariance_trace, rel=1e-6)


def test_fd_with_fewer_vectors_than_features_stays_finite_and_non_negative():
    a, b = _gaussian_features(5, 16, seed=1), _gaussian_features(5, 16, seed=2)
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 0


@pytest.mark.parametrize("count", [0, 1])
def test_fd_refuses_a_set_too_small_for_a_covariance(count):
    with pytest.raises(ValueError, match="at least 2 feature vectors"):
        frechet_distance(np.zeros((count, 4)), np.zeros((10, 4)))


def test_fd_refuses_feature_sets_of_different_sizes():
    with pytest.raises(ValueError, match="one size"):
        frechet_distance(np.zeros((10, 4)), np.zeros((10, 5)))


def test_the_feature_network_is_trained_once_then_loaded_and_leaves_the_global_rng_alone(tiny_dataset, tmp_path):
    from mritune.trainables.dcgan.realism import FEATURE_DIM, feature_network

    numpy_state, python_state = np.random.get_state(), random.getstate()
    first = feature_network(tiny_dataset, 32, cache_dir=tmp_path)
    assert first.trained and first.path.is_file() and first.path.parent.parent == tmp_path
    assert first.path.name.startswith(tiny_dataset.fingerprint[:32]) and "-32px-" in first.path.name
    assert np.array_equal(np.random.get_state()[1], numpy_state[1]) and random.getstate() == python_state
    written = first.path.stat().st_mtime_ns
    second = feature_network(tiny_dataset, 32, cache_dir=tmp_path)
    assert not second.trained and second.path == first.path and first.path.stat().st_mtime_ns == written
    images = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 1)).astype(np.float32)
    features = second.features(images)
    assert features.shape == (5, FEATURE_DIM)
    assert np.array_equal(features, first.features(images)), "the trained and the loaded network measure alike"
    assert sorted(p.name for p in tmp_path.rglob("*.keras")) == [first.path.name], "no temporary file left"


def test_another_image_size_or_split_is_another_network(tiny_dataset, tmp_path):
    import dataclasses

    from mritune.trainables.dcgan.realism import feature_network_path

    path = feature_network_path(tiny_dataset, 32, cache_dir=tmp_path)
    assert feature_network_path(tiny_dataset, 64, cache_dir=tmp_path) != path
    other_split = dataclasses.replace(tiny_dataset, x_train=tiny_dataset.x_train[1:], y_train=tiny_dataset.y_train[1:])
    assert feature_network_path(other_split, 32, cache_dir=tmp_path) != path


def test_an_unreadable_cached_network_is_trained_again(tiny_dataset, tmp_path):
    from mritune.trainables.dcgan.realism import feature_network, feature_network_path

    path = feature_network_path(tiny_dataset, 32, cache_dir=tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a keras file")
    network = feature_network(tiny_dataset, 32, cache_dir=tmp_path)
    assert network.trained and path.read_bytes()[:2] == b"PK"


def _ask_for_the_network(dataset, cache_dir: str, barrier, results) -> None:
    """In a spawned process: wait for the other, then ask for the network at once."""
    from tests.trainables.training_helpers import few_tf_threads

    few_tf_threads()
    import keras  # noqa: F401  (imported before the barrier: both processes then ask at the same moment)

    from mritune.trainables.dcgan.realism import feature_network

    barrier.wait(timeout=120)
    network = feature_network(dataset, 32, cache_dir=cache_dir)
    results.put((network.trained, hashlib.sha256(network.path.read_bytes()).hexdigest()))


def test_two_processes_asking_at_once_get_one_identical_file_trained_once(tiny_dataset, tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_ask_for_the_network, args=(tiny_dataset, str(tmp_path), barrier, results))
                 for _ in range(2)]
    for process in processes:
        process.start()
    try:
        answers = [results.get(timeout=180) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
    assert all(process.exitcode == 0 for process in processes)
    assert sorted(trained for trained, _ in answers) == [False, True], "one trained, the other loaded its file"
    assert answers[0][1] == answers[1][1]
    assert [p.suffix for p in (tmp_path / "feature_nets").iterdir() if p.suffix != ".lock"] == [".keras"]


def test_the_floors_are_below_a_noise_generators_scores(tiny_dataset, tmp_path):
    from mritune.trainables.data.arrays import resized
    from mritune.trainables.dcgan.images import to_unit_range
    from mritune.trainables.dcgan.metrics import sliced_wasserstein_distance
    from mritune.trainables.dcgan.realism import realism_reference

    held_out = to_unit_range(resized(tiny_dataset.x_val, 32))
    reference = realism_reference(tiny_dataset, 32, held_out, cache_dir=tmp_path)
    noise = np.random.default_rng(0).uniform(-1, 1, held_out.shape).astype(np.float32)
    assert reference.floors.images == len(held_out)
    assert 0 < reference.floors.fd < reference.frechet_distance(noise) / 10
    assert 0 < reference.floors.swd < sliced_wasserstein_distance(noise, held_out) / 2
    again = realism_reference(tiny_dataset, 32, held_out, cache_dir=tmp_path)
    assert again.floors == reference.floors, "fixed seeds: every trial on one dataset gets the same floors"


def test_an_unwritable_cache_costs_a_training_not_the_trial(tiny_dataset, tmp_path, caplog):
    from mritune.trainables.dcgan.realism import FEATURE_DIM, feature_network

    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")  # the cache folder cannot be created under a file
    network = feature_network(tiny_dataset, 32, cache_dir=blocked)
    assert network.trained and not network.path.exists() and "could not cache the feature network" in caplog.text
    assert network.features(np.zeros((3, 32, 32, 1), np.float32)).shape == (3, FEATURE_DIM)
