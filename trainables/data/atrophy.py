"""Anatomy for the synthetic MRI dataset: MNI152 template slices and a graded atrophy model.

The template (nilearn ships it, so this works offline) gives real brain anatomy; every synthetic image is one of
its axial slices around the lateral ventricles, re-rendered from tissue maps with a per-subject contrast and
deformed by three atrophy effects whose strength grows with a continuous disease severity:

- ventricular enlargement: tissue is pushed away from the ventricles by a smooth displacement field;
- cortical thinning and sulcal widening: dark CSF grows into grey matter in a band under the brain surface
  (a grey-level erosion blended in by severity), which also shrinks the brain outline a little;
- hippocampal / medial-temporal shrinkage: tissue contracts towards the hippocampi, whose CSF spaces widen.

Severities of neighbouring classes overlap, and subjects vary in ventricle size and cortical thickness for
reasons unrelated to disease, so the classes differ subtly rather than trivially.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
from mritune.trainables.errors import MissingDependency

# Axial slices (MNI z in mm) through the bodies of the lateral ventricles. A narrow band: the ventricles' size
# changes so much from slice to slice that a wide band (0-20 mm) hid the disease effect behind the slice choice.
SLICE_Z_MM = (6, 14)
# Per-class mean severity (CLASS_NAMES order) and the spread that makes neighbouring classes overlap (means 4 SD
# apart: neighbours overlap at the tails, so no class is perfectly separable).
SEVERITY_MEANS = (0.0, 0.33, 0.66, 1.0)
SEVERITY_SD = 0.08


@dataclass(frozen=True)
class Effect:
    """One atrophy effect in mm: ``base + per_severity * severity`` plus a subject's own normal ``spread``."""

    base: float
    per_severity: float
    spread: float  # anatomy unrelated to disease: what makes one subject's effect ambiguous


# Calibrated (benchmarks/learnability.py) so that a small CNN learns the classes within a quick search's few
# epochs while a PCA + logistic-regression baseline stays clearly below perfect: with half these effect sizes,
# SD 0.14 and slices 0-20 mm, a CNN stayed at the majority-class score for 4 epochs and PCA+LR reached 0.42.
VENTRICLE = Effect(1.0, 14.0, 0.6)  # ventricular enlargement
THINNING = Effect(0.5, 10.0, 0.5)  # cortical thinning / sulcal widening
TEMPORAL = Effect(0.5, 9.0, 0.6)  # medial-temporal shrinkage
BRAIN_SHRINK = 0.03  # brain outline shrinks by this share at severity 1
# Hippocampi and medial temporal lobes in MNI mm (x, y, z) with the width of their influence.
_TEMPORAL_CENTRES_MM = ((-27.0, -22.0, -12.0), (27.0, -22.0, -12.0))
_TEMPORAL_SIGMA_MM = 11.0
_TEMPLATE_ORIGIN_MM = np.array([-98.0, -134.0, -72.0])  # the 1 mm template's affine offset (voxel 0)


@dataclass(frozen=True, kw_only=True)
class TemplateSlices:
    """Per-slice maps on the cropped 1 mm grid (rows: anterior at the top; columns: left-right)."""

    gm: np.ndarray  # (S, H, W) float32 grey-matter probability
    wm: np.ndarray  # white matter
    csf: np.ndarray  # brain mask minus GM and WM: ventricles, sulci, cisterns
    cortical_band: np.ndarray  # 1 at the brain surface, fading to 0 at 14 mm deep
    wm_distance: np.ndarray  # distance (mm) to the nearest white matter
    ventricle_field: np.ndarray  # (S, 2, H, W) (dx, dy) pointing into the ventricles, max magnitude 1
    temporal_weight: np.ndarray  # (S, H, W) 0..1 near the hippocampi
    temporal_field: np.ndarray  # (S, 2, H, W) (dx, dy) pointing away from the hippocampi, max magnitude ~1

    @property
    def count(self) -> int:
        return self.gm.shape[0]

    @property
    def side(self) -> int:
        return self.gm.shape[1]


def draw_severity(rng: np.random.Generator, label: int) -> float:
    """A continuous disease severity for a subject of class ``label``; neighbouring classes overlap."""
    return float(np.clip(rng.normal(SEVERITY_MEANS[label], SEVERITY_SD), 0.0, 1.4))


@functools.lru_cache(maxsize=1)
def template_slices() -> TemplateSlices:
    """Load the MNI152 template once per process and precompute every per-slice map (about 3 s)."""
    gm3, wm3, mask3 = _load_template_volumes()
    z0, z1 = (int(z - _TEMPLATE_ORIGIN_MM[2]) for z in SLICE_Z_MM)
    rows, cols = _square_crop(mask3[:, :, z0:z1])
    maps = [_slice_maps(gm3, wm3, mask3, z, rows, cols) for z in range(z0, z1)]
    stacked = {key: np.stack([m[key] for m in maps]).astype(np.float32) for key in maps[0]}
    # One normalisation for all slices, so slices with small ventricles get small displacements.
    stacked["ventricle_field"] /= max(float(np.abs(stacked["ventricle_field"]).max()), 1e-6)
    return TemplateSlices(**stacked)


def _load_template_volumes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        from nilearn import datasets
    except ImportError as exc:  # nilearn is a core dependency, but say how to fix a broken install
        raise MissingDependency("the synthetic dataset needs nilearn: pip install 'mritune'") from exc
    t1 = datasets.load_mni152_template(resolution=1).get_fdata(dtype=np.float32)
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32)
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32)
    mask = (t1 > 0).astype(np.float32)
    return gm * mask, wm * mask, mask


def _square_crop(mask_slab: np.ndarray) -> tuple[slice, slice]:
    """A square window (in the rotated slice) holding the brain of every slice with a margin."""
    union = _axial(mask_slab.max(axis=2)) > 0
    ys, xs = np.nonzero(union)
    side = int(max(ys.max() - ys.min(), xs.max() - xs.min())) + 24
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    height, width = union.shape
    top = int(np.clip(cy - side // 2, 0, max(height - side, 0)))
    left = cx - side // 2  # may run past the volume's edge: padded below
    return slice(top, top + side), slice(left, left + side)


def _axial(volume_slice: np.ndarray) -> np.ndarray:
    """Voxel (x, y) slice -> image with anterior at the top and the subject's left on the left (neurological)."""
    return np.rot90(volume_slice)


def _crop(image: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    pad = max(0, -cols.start, cols.stop - image.shape[1])
    padded = np.pad(image, ((0, 0), (pad, pad)))
    return padded[rows, cols.start + pad : cols.stop + pad]


def _slice_maps(gm3, wm3, mask3, z: int, rows: slice, cols: slice) -> dict[str, np.ndarray]:
    gm, wm, mask = (_crop(_axial(v[:, :, z]), rows, cols) for v in (gm3, wm3, mask3))
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    depth = cv2.distanceTransform((mask > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    cortical_band = np.clip(1.0 - depth / 14.0, 0.0, 1.0) * (mask > 0.5)
    temporal_weight, temporal_field = _temporal_maps(z, rows, cols, mask.shape)
    return {
        "gm": gm,
        "wm": wm,
        "csf": csf,
        "cortical_band": cortical_band,
        "wm_distance": cv2.distanceTransform((wm < 0.5).astype(np.uint8), cv2.DIST_L2, 5),
        "ventricle_field": _ventricle_field(csf, depth),
        "temporal_weight": temporal_weight,
        "temporal_field": temporal_field,
    }


def _ventricle_field(csf: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Gradient of the blurred ventricle mask: sampling along it makes the ventricles grow smoothly."""
    # Ventricles: CSF deep inside the brain (sulci and the interhemispheric fissure are near the surface).
    ventricles = ((csf > 0.5) & (depth > 16.0)).astype(np.float32)
    ventricles = cv2.morphologyEx(ventricles, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    smooth = cv2.GaussianBlur(ventricles, (0, 0), 5.0)
    gy, gx = np.gradient(smooth)
    return np.stack([gx, gy])


def _temporal_maps(z: int, rows: slice, cols: slice, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Weight near the hippocampi (3D Gaussian cut by this slice) and the field that contracts tissue there."""
    height, width = shape
    r, c = np.mgrid[0:height, 0:width].astype(np.float32)
    # Undo the crop and rot90: image row -> voxel y (flipped), image column -> voxel x.
    voxel_x = c + cols.start
    voxel_y = (233 - 1) - (r + rows.start)
    weight = np.zeros(shape, np.float32)
    field = np.zeros((2, *shape), np.float32)
    for centre in _TEMPORAL_CENTRES_MM:
        cx, cy, cz = np.array(centre) - _TEMPLATE_ORIGIN_MM
        dx, dy, dz = voxel_x - cx, voxel_y - cy, z - cz
        w = np.exp(-(dx**2 + dy**2 + dz**2) / (2 * _TEMPORAL_SIGMA_MM**2))
        weight += w
        # In image coordinates +x is +column and +y is -voxel_y.
        field += np.stack([dx, -dy]) * w / _TEMPORAL_SIGMA_MM
    return np.clip(weight, 0.0, 1.0), field
