"""Sampling the tiny registered generator: a grid PNG or single PNGs, reproducible by seed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from mritune.deploy.generate import GRID_PADDING, make_grid, run_generate
from mritune.platform.cli.app import app
from tests.deploy.conftest import GENERATOR, IMAGE_SIZE


def _read(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def test_cli_generate_writes_a_grid(registry, tmp_path):
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(
        app, ["generate", "--model", f"models:/{GENERATOR}@champion", "--n", "5", "--seed", "3", "--out", str(out),
              "--tracking-uri", registry.tracking_uri],
    )
    assert result.exit_code == 0, result.output
    step = IMAGE_SIZE + GRID_PADDING
    # 5 samples → 3 columns × 2 rows, padding between the tiles only.
    assert _read(out).shape == (2 * step - GRID_PADDING, 3 * step - GRID_PADDING)


def test_single_pngs_are_reproducible_by_seed(registry, tmp_path):
    model = f"{GENERATOR}@champion"
    first = run_generate(model=model, n=4, seed=11, out=tmp_path / "a", tracking_uri=registry.tracking_uri)
    again = run_generate(model=model, n=4, seed=11, out=tmp_path / "b", tracking_uri=registry.tracking_uri)
    other = run_generate(model=model, n=4, seed=12, out=tmp_path / "c", tracking_uri=registry.tracking_uri)
    assert [p.name for p in first] == [f"sample_{i:04d}.png" for i in range(4)]
    images = [_read(p) for p in first]
    assert all(i.shape == (IMAGE_SIZE, IMAGE_SIZE) and i.dtype == np.uint8 for i in images)
    assert all(np.array_equal(a, _read(b)) for a, b in zip(images, again))
    assert not all(np.array_equal(a, _read(b)) for a, b in zip(images, other))
    assert len({i.tobytes() for i in images}) == 4, "different noise per sample"


def test_grid_places_every_tile():
    images = np.stack([np.full((4, 4), v, dtype=np.uint8) for v in (10, 20, 30)])
    grid = make_grid(images, padding=1)
    assert grid.shape == (9, 9)
    assert (grid[0, 0], grid[0, 5], grid[5, 0], grid[5, 5]) == (10, 20, 30, 0)


def test_bad_arguments_fail_before_loading(tmp_path):
    with pytest.raises(ValueError, match="must be a .png file"):
        run_generate(model="models:/x@champion", n=2, out=tmp_path / "grid.jpg")
    with pytest.raises(ValueError, match="--n must be between 1"):
        run_generate(model="models:/x@champion", n=0, out=tmp_path / "grid.png")


def test_classifier_is_not_a_generator(registry, tmp_path):
    with pytest.raises(ValueError, match="not a generator"):
        run_generate(model="mritune-classifier", n=2, out=tmp_path / "g.png", tracking_uri=registry.tracking_uri)
