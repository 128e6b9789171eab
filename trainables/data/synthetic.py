"""A synthetic Alzheimer's MRI dataset in the public layout (a): ``<out>/Dataset/<Class_Folder>/*.jpg``.

Every image is a different "subject": an axial MNI152 slice around the lateral ventricles, rendered with its own
tissue contrast, random affine and elastic deformation, graded atrophy (see ``atrophy.py``), an intensity bias
field, blur and Rician noise. The output is deterministic per seed: image ``i`` draws all its randomness from
``default_rng([seed, i])``, so the thread pool's scheduling never changes a byte.

Class proportions (``class_counts``), always NonDemented > VeryMildDemented > MildDemented > ModerateDemented:

- up to 3200 images (the quick sizes): 40/30/20/10%, e.g. 640 -> 256/192/128/64 and 960 -> 384/288/192/96, so
  the stratified 15% test split holds at least 10 images of every class from n = 640 up (10 and 14 Moderate);
- above 3200: the original dataset's 50/35/14/1% (6400 -> 3200/2240/896/64), at least 16 ModerateDemented.

The effect sizes (``atrophy.py``) are calibrated so that a good small-CNN configuration learns the classes in a
quick search's budget and a bad one does not: ``benchmarks/learnability.py`` measures it.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from mritune.trainables.data.atrophy import (
    BRAIN_SHRINK,
    TEMPORAL,
    THINNING,
    VENTRICLE,
    TemplateSlices,
    draw_severity,
    template_slices,
)
from mritune.trainables.data.classes import CLASS_NAMES
from mritune.trainables.errors import NotAFolder, UserInputError

log = logging.getLogger(__name__)

# The public dataset's folder names and file prefixes, in CLASS_NAMES order.
CLASS_FOLDERS = ("Non_Demented", "Very_Mild_Demented", "Mild_Demented", "Moderate_Demented")
_FILE_PREFIXES = ("non", "verymild", "mild", "moderate")
# The original dataset's class sizes (3200/2240/896/64 of 6400): used above QUICK_MAX_N images.
ORIGINAL_COUNTS = (3200, 2240, 896, 64)
# Up to QUICK_MAX_N images the rare classes get a larger share (same order), so that a quick dataset's 15% test
# split holds at least 10 ModerateDemented images from n = 640 (64 of them) up: with the original 1% it would
# hold 1 or 2, and a macro-F1 over 4 classes would hinge on them.
QUICK_PROPORTIONS = (0.40, 0.30, 0.20, 0.10)
QUICK_MAX_N = 3200
MIN_MODERATE = 16
# Part of the cache folder's name: bump it whenever the images a (n, size, seed) renders change, so that a
# dataset cached by an earlier version is never silently reused. 2: calibrated effect sizes and quick proportions.
SYNTHESIS_VERSION = 2
MIN_IMAGES = 64
JPEG_QUALITY = 92
# Grey matter this far (mm) from white matter becomes CSF at zero atrophy (the averaged template is thick).
_RIBBON_MM = 9.0


def class_counts(n: int) -> tuple[int, ...]:
    """Images per class for ``n`` images, in CLASS_NAMES order; at least MIN_MODERATE ModerateDemented.

    Up to QUICK_MAX_N images: QUICK_PROPORTIONS (40/30/20/10%); above: the original proportions (50/35/14/1%).
    """
    if n < MIN_IMAGES:
        raise UserInputError(f"--n {n} is too small: the synthetic dataset needs at least {MIN_IMAGES} images")
    proportions = np.array(QUICK_PROPORTIONS if n <= QUICK_MAX_N else ORIGINAL_COUNTS, dtype=float)
    proportions /= proportions.sum()
    moderate = max(MIN_MODERATE, round(n * proportions[3]))
    shares = proportions[:3] / proportions[:3].sum() * (n - moderate)
    counts = np.floor(shares).astype(int)
    # Largest remainder, so the counts add up to n exactly.
    for i in np.argsort(-(shares - counts))[: n - moderate - counts.sum()]:
        counts[i] += 1
    return (*map(int, counts), moderate)


def synthesize_dataset(out_dir: str | Path, *, n: int = 6400, seed: int = 0, size: int = 128,
                       preview: str | Path | None = None) -> Path:
    """Write ``n`` synthetic images to ``out_dir/Dataset/<Class_Folder>/`` and return that dataset root.

    The images are written to a temporary sibling folder and renamed into place, so an interrupted run never
    leaves half a dataset behind.
    """
    if not 32 <= size <= 512:
        raise UserInputError(f"--size {size} is out of range: use 32 to 512 pixels")
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise NotAFolder(f"--out {out_dir} is a file: give a folder (it is created if missing)")
    root = out_dir / "Dataset"
    if root.exists():
        raise UserInputError(f"{root} already exists: choose another --out folder or delete it first")
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / f".Dataset.partial-{uuid.uuid4().hex[:8]}"
    try:
        _write_images(partial, n=n, seed=seed, size=size)
        os.rename(partial, root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if preview is not None:
        write_contact_sheet(root, Path(preview))
    return root


def synthetic_cache_folder(*, n: int, size: int, seed: int, cache_dir: str | Path | None = None) -> Path:
    """The folder ``load_synthetic`` keeps this synthetic dataset in (it holds ``Dataset/<Class_Folder>/``)."""
    from mritune.trainables.data.loading import resolve_cache_dir

    return resolve_cache_dir(cache_dir) / "synthetic" / f"n{n}-s{size}-seed{seed}-v{SYNTHESIS_VERSION}"


def load_synthetic(*, n: int, size: int, seed: int, cache_dir: str | Path | None = None,
                   image_size: int | None = None, val_fraction: float = 0.15, test_fraction: float = 0.15):
    """The synthetic dataset as an MRIDataset, synthesized once into ``<cache>/synthetic/`` and then reused.

    ``image_size`` (default ``size``) is the size the images are loaded at; the split uses ``seed`` too.
    """
    from dataclasses import replace

    from mritune.trainables.data.loading import load_dataset, resolve_cache_dir

    cache = resolve_cache_dir(cache_dir)
    target = synthetic_cache_folder(n=n, size=size, seed=seed, cache_dir=cache)
    if not (target / "Dataset").is_dir():
        _synthesize_into(target, n=n, seed=seed, size=size)
    dataset = load_dataset(target / "Dataset", image_size=image_size or size, val_fraction=val_fraction,
                           test_fraction=test_fraction, seed=seed, cache_dir=cache)
    return replace(dataset, layout="synthetic")


def _synthesize_into(target: Path, *, n: int, seed: int, size: int) -> None:
    """Synthesize into a temporary folder beside ``target`` and rename it; a concurrent winner is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        synthesize_dataset(staging, n=n, seed=seed, size=size)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "Dataset").is_dir():  # not a concurrent writer finishing first: a real error
                raise
            log.info("another process synthesized %s first; using its copy", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_images(dataset_dir: Path, *, n: int, seed: int, size: int) -> None:
    counts = class_counts(n)
    labels = np.repeat(np.arange(len(CLASS_NAMES)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for folder in CLASS_FOLDERS:
        (dataset_dir / folder).mkdir(parents=True)
    slices = template_slices()  # loaded before the pool so the threads share one copy

    def write_one(index: int) -> None:
        label = int(labels[index])
        image = render_subject(slices, np.random.default_rng([seed, index]), label, size)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode synthetic image {index} as JPEG")
        name = f"{_FILE_PREFIXES[label]}_{index - starts[label]}.jpg"
        (dataset_dir / CLASS_FOLDERS[label] / name).write_bytes(encoded.tobytes())

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(write_one, range(n), chunksize=32))  # list() re-raises a worker's exception


def render_subject(slices: TemplateSlices, rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    """One synthetic subject of class ``label`` as a (size, size) uint8 image."""
    severity = draw_severity(rng, label)
    index = int(rng.integers(slices.count))
    # Anatomy that varies between subjects whatever their disease: the severity is only part of each effect.
    ventricle_mm, thinning_mm, temporal_mm = (
        max(0.0, effect.base + effect.per_severity * severity + rng.normal(0.0, effect.spread))
        for effect in (VENTRICLE, THINNING, TEMPORAL)
    )
    tissue = _tissue_image(slices, index, rng, thinning_mm=thinning_mm, temporal_mm=temporal_mm)
    map_x, map_y = _sampling_maps(slices, index, rng, size, ventricle_mm=ventricle_mm, temporal_mm=temporal_mm,
                                  shrink=BRAIN_SHRINK * severity)
    image = cv2.remap(tissue, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return _scanner_effects(image, rng)


def _smooth_noise(rng: np.random.Generator, grid: int, shape: tuple[int, int]) -> np.ndarray:
    """Smooth random field: a coarse normal grid upsampled bicubically (much cheaper than Gaussian filtering)."""
    coarse = rng.standard_normal((grid, grid)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _tissue_image(slices: TemplateSlices, index: int, rng: np.random.Generator, *, thinning_mm: float,
                  temporal_mm: float) -> np.ndarray:
    """T1-like intensities from tissue maps, after cortical and medial-temporal grey matter is lost to CSF.

    Grey matter further than a threshold from white matter becomes CSF: this thins the cortical ribbon from the
    outside and widens the sulci from their depths, as atrophy does. The threshold drops by ``thinning_mm`` in
    the cortical band and by ``temporal_mm`` near the hippocampi, unevenly (a smooth random patchiness).
    """
    patchiness = 1.0 + 0.25 * _smooth_noise(rng, 6, slices.gm[index].shape)
    reach = (thinning_mm * slices.cortical_band[index] + temporal_mm * slices.temporal_weight[index]) * patchiness
    threshold = _RIBBON_MM - reach
    lost = slices.gm[index] * np.clip((slices.wm_distance[index] - threshold) / 1.5 + 0.5, 0.0, 1.0)
    lost *= slices.cortical_band[index] + slices.temporal_weight[index] > 0.05  # deep grey nuclei stay
    white, grey, csf = rng.uniform(0.82, 0.95), rng.uniform(0.45, 0.58), rng.uniform(0.05, 0.15)
    return white * slices.wm[index] + grey * (slices.gm[index] - lost) + csf * (slices.csf[index] + lost)


def _sampling_maps(slices: TemplateSlices, index: int, rng: np.random.Generator, size: int, *,
                   ventricle_mm: float, temporal_mm: float, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel samples the template slice: subject affine + elastic, then atrophy warps."""
    half = size / 2.0
    elastic = 1.2 * size / 128  # pixels: the same anatomical wobble at every image size
    v, u = np.mgrid[0:size, 0:size].astype(np.float32)
    u = (u - half + 0.5) + elastic * _smooth_noise(rng, 5, (size, size))
    v = (v - half + 0.5) + elastic * _smooth_noise(rng, 5, (size, size))
    angle = np.deg2rad(rng.normal(0.0, 4.0))
    scale = slices.side / size * (1.0 + shrink) / rng.uniform(0.95, 1.05, size=2)
    shift = rng.uniform(-0.04, 0.04, size=2) * slices.side
    cos, sin = np.cos(angle), np.sin(angle)
    centre = slices.side / 2.0
    x = (centre + shift[0] + scale[0] * (cos * u - sin * v)).astype(np.float32)
    y = (centre + shift[1] + scale[1] * (sin * u + cos * v)).astype(np.float32)

    def field_at(component: np.ndarray) -> np.ndarray:
        return cv2.remap(component, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    vent, temp = slices.ventricle_field[index], slices.temporal_field[index]
    # Ventricles: sample further into them (they grow); hippocampi: sample further out (they shrink).
    map_x = x + ventricle_mm * field_at(vent[0]) + temporal_mm * field_at(temp[0])
    map_y = y + ventricle_mm * field_at(vent[1]) + temporal_mm * field_at(temp[1])
    return map_x, map_y


def _scanner_effects(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bias field, gamma, blur and Rician noise, then scaled to uint8 like an exported slice."""
    image = image * np.exp(0.12 * _smooth_noise(rng, 3, image.shape))
    image = np.power(np.clip(image, 0.0, None), rng.uniform(0.85, 1.15))
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.35, 0.8))
    sigma = rng.uniform(0.01, 0.035)
    real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    magnitude = np.sqrt(real * real + imaginary * imaginary)
    gain = rng.uniform(235.0, 265.0)
    return np.clip(magnitude * gain, 0, 255).astype(np.uint8)


def write_contact_sheet(root: Path, out_png: Path, *, per_class: int = 6) -> Path:
    """A PNG grid with ``per_class`` images of each class (one row per class, labelled), for a quick look."""
    rows = []
    for folder, name in zip(CLASS_FOLDERS, CLASS_NAMES):
        paths = sorted((root / folder).glob("*.jpg"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))[:per_class]
        tiles = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]
        tile_size = tiles[0].shape[0]
        tiles += [np.zeros((tile_size, tile_size), np.uint8)] * (per_class - len(tiles))
        label = np.zeros((tile_size // 4 + 8, tile_size * per_class), np.uint8)
        cv2.putText(label, name, (4, label.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, tile_size / 256, 255, 1)
        rows += [label, np.hstack(tiles)]
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), np.vstack(rows)):
        raise UserInputError(f"could not write the preview {out_png}: use a .png path in a writable folder")
    return out_png
