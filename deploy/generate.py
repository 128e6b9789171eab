"""Sampling the DCGAN generator: a grid PNG, or one PNG per sample in a folder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mritune.deploy.pyfunc_generator import MAX_SAMPLES, GeneratorSampler, png_bytes
from mritune.trainables.errors import UserInputError

GRID_PADDING = 2


def make_grid(images: np.ndarray, *, padding: int = GRID_PADDING) -> np.ndarray:
    """uint8 images (n, S, S) → one uint8 grid image, as square as possible, black between the tiles."""
    count, size = len(images), images.shape[1]
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    step = size + padding
    grid = np.zeros((rows * step - padding, columns * step - padding), dtype=np.uint8)
    for index, image in enumerate(images):
        top, left = (index // columns) * step, (index % columns) * step
        grid[top : top + size, left : left + size] = image
    return grid


def write_samples(images: np.ndarray, out: Path) -> list[Path]:
    """Write a grid to ``out`` if it ends in .png, else one ``sample_0000.png``... per image into folder ``out``."""
    if out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(png_bytes(make_grid(images)))
        return [out]
    if out.suffix:
        raise UserInputError(f"--out {out} must be a .png file (a grid) or a folder (one PNG per sample)")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, image in enumerate(images):
        path = out / f"sample_{index:04d}.png"
        path.write_bytes(png_bytes(image))
        written.append(path)
    return written


def run_generate(
    *, model: str, n: int, out: Path, seed: int | None = None, tracking_uri: str | None = None
) -> list[Path]:
    """The `mritune generate` command: load the generator's .keras from the model, sample, write PNGs.

    Args:
        model: A registry reference (``mritune-dcgan@champion``) or a folder written by ``mritune pull``.
        n: How many images, 1 to ``MAX_SAMPLES``.
        out: A ``.png`` file (one grid of all samples) or a folder (one PNG per sample).
        seed: Seed of the latent noise (the same seed gives the same images); None: random.
        tracking_uri: The MLflow store; None: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns.db``.

    Returns:
        The PNG files written.

    Raises:
        ValueError: ``n`` out of range, ``out`` with a suffix other than ``.png``, or the model is not a generator.
        FileNotFoundError: The model or its tracking store cannot be found.
        TrackingServerUnreachable: An http(s) tracking server does not answer.
        UnsafeModelError: The model would need pickle to load.

    Example:
        >>> run_generate(model="mritune-dcgan@champion", n=16, out=Path("samples.png"), seed=0)  # doctest: +SKIP
        [PosixPath('samples.png')]
    """
    from mritune.deploy.registry_client import open_model

    if not 1 <= n <= MAX_SAMPLES:
        raise UserInputError(f"--n must be between 1 and {MAX_SAMPLES}, got {n}")
    if out.suffix and out.suffix.lower() != ".png":
        raise UserInputError(f"--out {out} must be a .png file (a grid) or a folder (one PNG per sample)")
    with open_model(model, tracking_uri=tracking_uri) as (folder, _description):
        sampler = GeneratorSampler.from_folder(folder)
    return write_samples(sampler.sample(n, seed=seed), out)
