"""The synthetic MRI dataset: layout, class proportions, determinism, the cache folder, the contact sheet."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from mritune.trainables.data.classes import CLASS_NAMES
from mritune.trainables.data.loading import inspect_dataset, stratified_split
from mritune.trainables.data.synthetic import (
    CLASS_FOLDERS,
    SYNTHESIS_VERSION,
    class_counts,
    load_synthetic,
    synthesize_dataset,
    synthetic_cache_folder,
)


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.jpg")}


def test_class_counts_follow_the_original_proportions_above_the_quick_sizes():
    assert class_counts(6400) == (3200, 2240, 896, 64)
    assert class_counts(3201) == (1601, 1120, 448, 32)
    for n in (3300, 12345):
        counts = class_counts(n)
        assert sum(counts) == n and counts[0] > counts[1] > counts[2] > counts[3] >= 16


def test_quick_sizes_give_every_class_ten_test_images():
    assert class_counts(960) == (384, 288, 192, 96)
    assert class_counts(640) == (256, 192, 128, 64)
    assert class_counts(3200) == (1280, 960, 640, 320)
    for n in (64, 100, 240, 1001):
        counts = class_counts(n)
        assert sum(counts) == n and counts[3] >= 16
        assert counts[0] > counts[1] > counts[2]
    for n in (640, 960, 3200):
        labels = np.repeat(np.arange(4), class_counts(n))
        _, _, test = stratified_split(labels, val_fraction=0.15, test_fraction=0.15, seed=0)
        assert np.bincount(labels[test]).min() >= 10
    with pytest.raises(ValueError, match="at least 64"):
        class_counts(10)


def test_fixture_dataset_has_the_public_layout(synthetic_root):
    assert synthetic_root.name == "Dataset"
    assert sorted(p.name for p in synthetic_root.iterdir()) == sorted(CLASS_FOLDERS)
    counts = tuple(len(list((synthetic_root / folder).glob("*.jpg"))) for folder in CLASS_FOLDERS)
    assert counts == class_counts(240)
    report = inspect_dataset(synthetic_root)
    assert report.classes == dict(zip(CLASS_NAMES, counts))
    assert report.sizes == {"64x64": 240} and report.skipped == ()


def test_images_look_like_a_brain_on_black(small_dataset):
    images = small_dataset.x_train.astype(float)
    border = np.concatenate([images[:, :3].ravel(), images[:, -3:].ravel()])
    centre = images[:, 24:40, 24:40]
    assert border.mean() < 30  # background
    assert centre.mean() > 60  # tissue
    assert images.std(axis=0).mean() > 10  # subjects differ


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    first = synthesize_dataset(tmp_path / "a", n=64, seed=5, size=32)
    second = synthesize_dataset(tmp_path / "b", n=64, seed=5, size=32)
    third = synthesize_dataset(tmp_path / "c", n=64, seed=6, size=32)
    assert _digests(first) == _digests(second)
    assert len(_digests(first)) == 64
    assert set(_digests(first).values()).isdisjoint(_digests(third).values())
    assert not list(tmp_path.glob("*/.Dataset.partial-*"))


def test_existing_output_is_not_overwritten(tmp_path):
    synthesize_dataset(tmp_path, n=64, seed=0, size=32)
    before = _digests(tmp_path / "Dataset")
    with pytest.raises(ValueError, match="already exists"):
        synthesize_dataset(tmp_path, n=64, seed=1, size=32)
    assert _digests(tmp_path / "Dataset") == before


def test_severe_classes_have_larger_csf_spaces(small_dataset):
    """The atrophy model shows in the pixels: the dark (CSF) share of the brain grows with the class, on average."""
    from scipy import ndimage

    x = np.concatenate([small_dataset.x_train, small_dataset.x_val, small_dataset.x_test])
    y = np.concatenate([small_dataset.y_train, small_dataset.y_val, small_dataset.y_test])
    # The brain: the filled outline (ventricles included), shrunk away from the surface.
    outline = [ndimage.binary_fill_holes(cv2.GaussianBlur(img, (0, 0), 1.0) > 30) for img in x]
    brain = np.stack([cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2) for m in outline]) > 0
    dark = ((x < 0.45 * np.percentile(x, 95)) & brain).sum(axis=(1, 2)) / brain.sum(axis=(1, 2))
    means = [dark[y == label].mean() for label in range(4)]
    assert means[0] < means[1] < means[2] and means[0] < means[3]
    # Overlapping, not separable: some NonDemented subjects look more atrophic than the MildDemented average.
    assert (dark[y == 0] > means[2]).any()


def test_load_synthetic_reuses_its_cache_folder(tmp_path):
    ds = load_synthetic(n=64, size=32, seed=2, cache_dir=tmp_path, image_size=16)
    folder = tmp_path / "synthetic" / f"n64-s32-seed2-v{SYNTHESIS_VERSION}" / "Dataset"
    assert synthetic_cache_folder(n=64, size=32, seed=2, cache_dir=tmp_path) == folder.parent
    assert folder.is_dir() and ds.layout == "synthetic" and ds.image_size == 16
    assert sum(len(y) for y in (ds.y_train, ds.y_val, ds.y_test)) == 64
    marker = folder / CLASS_FOLDERS[0] / "non_0.jpg"
    inode = marker.stat().st_ino
    again = load_synthetic(n=64, size=32, seed=2, cache_dir=tmp_path, image_size=16)
    assert marker.stat().st_ino == inode  # not synthesized a second time
    assert again.fingerprint == ds.fingerprint
    assert [p.name for p in (tmp_path / "synthetic").iterdir()] == [folder.parent.name]  # no staging left


def test_preview_contact_sheet(tmp_path):
    synthesize_dataset(tmp_path / "out", n=64, seed=0, size=32, preview=tmp_path / "sheet.png")
    sheet = cv2.imread(str(tmp_path / "sheet.png"), cv2.IMREAD_GRAYSCALE)
    assert sheet is not None
    assert sheet.shape[1] == 6 * 32  # six images per class
    assert sheet.shape[0] == 4 * (32 + 32 // 4 + 8)  # a label strip and a row per class
