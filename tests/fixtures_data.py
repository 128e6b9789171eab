"""Data fixtures: tiny synthetic MRI datasets, built once per test session (about 5 s, mostly the template).

- ``synthetic_root``: a synthesized layout-(a) dataset root (``.../Dataset``), 240 images at 64x64, seed 0
  (96 NonDemented, 72 VeryMildDemented, 48 MildDemented, 24 ModerateDemented).
- ``tiny_dataset``: an ``MRIDataset`` of it at image_size 32; ``small_dataset``: the same at image_size 64.
  Split 70/15/15, stratified, seed 0. Frozen dataclasses holding numpy arrays: do not write into the arrays.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SYNTHETIC_N = 240
SYNTHETIC_SIZE = 64


@pytest.fixture(scope="session")
def data_cache_dir(tmp_path_factory) -> Path:
    """A session-private dataset cache, so tests never read or fill ~/.cache/mritune."""
    return tmp_path_factory.mktemp("mritune-cache")


@pytest.fixture(scope="session", autouse=True)
def session_cache_env(data_cache_dir):
    """$MRITUNE_CACHE_DIR for every test that sets none: what a training caches by itself (the DCGAN's feature
    network, trainables/dcgan/realism.py) goes to the session's cache, never to ~/.cache/mritune."""
    import os

    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("MRITUNE_CACHE_DIR"):
            patch.setenv("MRITUNE_CACHE_DIR", str(data_cache_dir))
        yield


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    from mritune.trainables.data.synthetic import synthesize_dataset

    return synthesize_dataset(tmp_path_factory.mktemp("synthetic"), n=SYNTHETIC_N, seed=0, size=SYNTHETIC_SIZE)


@pytest.fixture(scope="session")
def tiny_dataset(synthetic_root, data_cache_dir):
    from mritune.trainables.data.loading import load_dataset

    return load_dataset(synthetic_root, image_size=32, seed=0, cache_dir=data_cache_dir)


@pytest.fixture(scope="session")
def small_dataset(synthetic_root, data_cache_dir):
    from mritune.trainables.data.loading import load_dataset

    return load_dataset(synthetic_root, image_size=64, seed=0, cache_dir=data_cache_dir)
