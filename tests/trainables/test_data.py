"""The MRI data layer on small real image trees written with OpenCV: layouts, bad files, splits, fingerprint, cache."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mritune.trainables.data.classes import CLASS_NAMES
from mritune.trainables.data.loading import cache_file, inspect_dataset, load_dataset, stratified_split
from mritune.trainables.data.discovery import LAYOUT_CLASS_FOLDERS, LAYOUT_TRAIN_TEST

# Folder spellings as found in the wild, in CLASS_NAMES order: case, underscores and spaces vary.
ODD_FOLDERS = ("Non_Demented", "very mild demented", "MILD_DEMENTED", "moderateDemented")
SPLIT_FOLDERS = ("NonDemented", "VeryMildDemented", "MildDemented", "ModerateDemented")
COUNTS = (6, 5, 4, 3)


def _image(label: int, index: int, shape: tuple[int, int]) -> np.ndarray:
    """A small image whose mean grey level encodes its class, so a test can check the label of every pixel row."""
    rng = np.random.default_rng([label, index])
    base = 40 + 50 * label
    return np.clip(base + rng.integers(-8, 9, size=shape), 0, 255).astype(np.uint8)


def _write_class_tree(folder: Path, names=ODD_FOLDERS, counts=COUNTS, shape=(40, 40), suffix=".jpg") -> None:
    for label, (name, count) in enumerate(zip(names, counts)):
        (folder / name).mkdir(parents=True)
        for i in range(count):
            cv2.imwrite(str(folder / name / f"img_{i}{suffix}"), _image(label, i, shape))


def _add_junk(class_dir: Path) -> dict[str, str]:
    """Bad files in a class folder; returns {file name: a word its skip reason must contain}."""
    good_jpeg = cv2.imencode(".jpg", _image(0, 99, (40, 40)))[1].tobytes()
    good_png = cv2.imencode(".png", _image(0, 98, (40, 40)))[1].tobytes()
    (class_dir / "empty.jpg").write_bytes(b"")
    (class_dir / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (class_dir / "truncated.png").write_bytes(good_png[: len(good_png) - 20])
    (class_dir / "notes_renamed.jpg").write_text("this is not an image")
    # Not images at all, by name: ignored rather than skipped.
    (class_dir / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (class_dir / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (class_dir / "readme.txt").write_text("scan notes")
    return {"empty.jpg": "empty", "truncated.jpg": "truncated", "truncated.png": "truncated",
            "notes_renamed.jpg": "not an image"}


def _all_labels(ds) -> np.ndarray:
    return np.concatenate([ds.y_train, ds.y_val, ds.y_test])


def _assert_labels_match_pixels(ds) -> None:
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        decoded_label = np.round((x.reshape(len(x), -1).mean(axis=1) - 40) / 50).astype(int)
        np.testing.assert_array_equal(decoded_label, y)


def test_class_folders_layout_with_junk(tmp_path):
    dataset = tmp_path / "download" / "Dataset"
    _write_class_tree(dataset)
    reasons = _add_junk(dataset / ODD_FOLDERS[1])
    # The path given is two levels above the class folders.
    ds = load_dataset(tmp_path, image_size=16, cache_dir=tmp_path / "cache")
    assert ds.layout == LAYOUT_CLASS_FOLDERS
    assert ds.class_names == CLASS_NAMES
    assert np.bincount(_all_labels(ds), minlength=4).tolist() == list(COUNTS)
    assert ds.x_train.shape[1:] == (16, 16) and ds.x_train.dtype == np.uint8
    skipped = dict(ds.skipped)
    assert set(skipped) == {f"{ODD_FOLDERS[1]}/{name}" for name in reasons}
    for name, word in reasons.items():
        assert word in skipped[f"{ODD_FOLDERS[1]}/{name}"]
    _assert_labels_match_pixels(ds)


def test_train_test_layout_keeps_given_test_split(tmp_path):
    root = tmp_path / "Alzheimer_s Dataset"
    _write_class_tree(root / "train", names=SPLIT_FOLDERS, counts=(10, 8, 6, 4), shape=(208, 176))
    _write_class_tree(root / "test", names=SPLIT_FOLDERS, counts=(3, 3, 2, 1), shape=(208, 176))
    (root / "test" / "MildDemented" / "Thumbs.db").write_bytes(b"\xd0\xcf")
    (root / "test" / "ModerateDemented" / "empty.jpg").write_bytes(b"")
    good = (root / "train" / "NonDemented" / "img_0.jpg").read_bytes()
    (root / "train" / "NonDemented" / "cut.jpg").write_bytes(good[: len(good) - 300])
    ds = load_dataset(tmp_path, image_size=32, val_fraction=0.25, cache_dir=tmp_path / "cache")
    assert ds.layout == LAYOUT_TRAIN_TEST
    assert dict(ds.skipped) == {"test/ModerateDemented/empty.jpg": "empty file",
                                "train/NonDemented/cut.jpg": "truncated JPEG (no end-of-image marker)"}
    assert np.bincount(ds.y_test, minlength=4).tolist() == [3, 3, 2, 1]
    assert np.bincount(ds.y_val, minlength=4).tolist() == [2, 2, 2, 1]  # round(n * 0.25), at least one
    assert len(ds.y_train) + len(ds.y_val) == 28
    _assert_labels_match_pixels(ds)

    report = inspect_dataset(root)
    assert report.layout == LAYOUT_TRAIN_TEST
    assert report.splits == {"train": dict(zip(CLASS_NAMES, (10, 8, 6, 4))),
                             "test": dict(zip(CLASS_NAMES, (3, 3, 2, 1)))}
    assert report.sizes == {"176x208": 37}
    assert report.fingerprint == ds.fingerprint
    assert "test/MildDemented/Thumbs.db" in report.ignored
    assert [path for path, _ in report.skipped] == ["test/ModerateDemented/empty.jpg", "train/NonDemented/cut.jpg"]


def test_inspect_lists_skipped_and_sizes(tmp_path):
    _write_class_tree(tmp_path / "Dataset")
    reasons = _add_junk(tmp_path / "Dataset" / ODD_FOLDERS[0])
    report = inspect_dataset(tmp_path / "Dataset")
    assert report.classes == dict(zip(CLASS_NAMES, COUNTS))
    assert report.splits is None
    assert report.sizes == {"40x40": sum(COUNTS)}
    assert sorted(path for path, _ in report.skipped) == sorted(f"{ODD_FOLDERS[0]}/{n}" for n in reasons)
    assert f"{ODD_FOLDERS[0]}/.DS_Store" in report.ignored
    json_dict = report.to_json_dict()
    assert {"layout", "classes", "splits", "skipped", "fingerprint", "sizes"} <= set(json_dict)
    assert all(set(item) == {"path", "reason"} for item in json_dict["skipped"])


def test_png_images_load(tmp_path):
    _write_class_tree(tmp_path / "Dataset", suffix=".png")
    ds = load_dataset(tmp_path / "Dataset", image_size=16, cache_dir=tmp_path / "cache")
    assert np.bincount(_all_labels(ds), minlength=4).tolist() == list(COUNTS)


def test_missing_class_is_a_one_line_error(tmp_path):
    _write_class_tree(tmp_path / "Dataset")
    shutil.rmtree(tmp_path / "Dataset" / ODD_FOLDERS[3])
    with pytest.raises(ValueError, match="ModerateDemented") as info:
        load_dataset(tmp_path, cache_dir=tmp_path / "cache")
    assert str(tmp_path / "Dataset") in str(info.value) and "\n" not in str(info.value)


def test_class_folder_without_images_is_an_error(tmp_path):
    _write_class_tree(tmp_path / "Dataset")
    for file in (tmp_path / "Dataset" / ODD_FOLDERS[2]).iterdir():
        file.unlink()
    (tmp_path / "Dataset" / ODD_FOLDERS[2] / ".DS_Store").write_bytes(b"x")
    with pytest.raises(ValueError, match="holds no image files"):
        load_dataset(tmp_path, cache_dir=tmp_path / "cache")


def test_class_with_only_bad_images_is_an_error(tmp_path):
    _write_class_tree(tmp_path / "Dataset", counts=(3, 3, 3, 1))
    (tmp_path / "Dataset" / ODD_FOLDERS[3] / "img_0.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="no decodable image of class ModerateDemented"):
        load_dataset(tmp_path, cache_dir=tmp_path / "cache")


def test_empty_folder_and_unknown_layout_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is empty") as info:
        load_dataset(tmp_path / "empty", cache_dir=tmp_path / "cache")
    assert "Dataset/<Class_Folder>" in str(info.value)

    _write_class_tree(tmp_path / "pets", names=("cats", "dogs", "birds", "fish"))
    with pytest.raises(ValueError, match="no known dataset layout") as info:
        load_dataset(tmp_path / "pets", cache_dir=tmp_path / "cache")
    assert str(tmp_path / "pets") in str(info.value) and "{train,test}" in str(info.value)

    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(tmp_path / "nowhere", cache_dir=tmp_path / "cache")


def test_two_datasets_under_one_path_are_ambiguous(tmp_path):
    _write_class_tree(tmp_path / "a" / "Dataset")
    _write_class_tree(tmp_path / "b" / "Dataset")
    with pytest.raises(ValueError, match="several datasets"):
        inspect_dataset(tmp_path)


def test_bad_arguments_are_rejected(tmp_path):
    _write_class_tree(tmp_path / "Dataset")
    with pytest.raises(ValueError, match="image_size"):
        load_dataset(tmp_path, image_size=0, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset(tmp_path, val_fraction=0.6, test_fraction=0.5, cache_dir=tmp_path / "cache")


def test_stratified_split_is_stratified_disjoint_and_deterministic():
    labels = np.repeat(np.arange(4), [500, 350, 140, 10])
    train, val, test = stratified_split(labels, val_fraction=0.15, test_fraction=0.15, seed=3)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(labels)))
    for part, fraction in ((val, 0.15), (test, 0.15)):
        counts = np.bincount(labels[part], minlength=4)
        expected = np.maximum(1, np.round(np.array([500, 350, 140, 10]) * fraction))
        np.testing.assert_array_equal(counts, expected)
    again = stratified_split(labels, val_fraction=0.15, test_fraction=0.15, seed=3)
    other = stratified_split(labels, val_fraction=0.15, test_fraction=0.15, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(val, other[1])
    assert len(set(labels[train[:50]].tolist())) > 1  # shuffled across classes, not class-sorted


def test_load_is_deterministic_per_seed(synthetic_root, data_cache_dir, tiny_dataset):
    again = load_dataset(synthetic_root, image_size=32, seed=0, cache_dir=data_cache_dir)
    np.testing.assert_array_equal(again.x_val, tiny_dataset.x_val)
    np.testing.assert_array_equal(again.y_train, tiny_dataset.y_train)
    other = load_dataset(synthetic_root, image_size=32, seed=1, cache_dir=data_cache_dir)
    assert not np.array_equal(other.y_train, tiny_dataset.y_train)
    assert other.fingerprint == tiny_dataset.fingerprint


def test_fingerprint_is_stable_and_tracks_bytes(tmp_path):
    _write_class_tree(tmp_path / "one" / "Dataset")
    first = inspect_dataset(tmp_path / "one").fingerprint
    assert inspect_dataset(tmp_path / "one" / "Dataset").fingerprint == first
    shutil.copytree(tmp_path / "one", tmp_path / "two")  # another place, fresh mtimes: same data
    assert inspect_dataset(tmp_path / "two").fingerprint == first
    (tmp_path / "two" / "Dataset" / ODD_FOLDERS[0] / ".DS_Store").write_bytes(b"finder")
    assert inspect_dataset(tmp_path / "two").fingerprint == first
    image = tmp_path / "two" / "Dataset" / ODD_FOLDERS[2] / "img_1.jpg"
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the middle of the entropy-coded data
    image.write_bytes(bytes(data))
    assert inspect_dataset(tmp_path / "two").fingerprint != first
    assert len(first) == 64


def test_second_load_reads_the_cache(tmp_path, caplog):
    _write_class_tree(tmp_path / "Dataset")
    cache = tmp_path / "cache"
    first = load_dataset(tmp_path, image_size=24, cache_dir=cache)
    entry = cache_file(cache, first.fingerprint, 24)
    assert entry.is_file()
    written_at = entry.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="mritune.trainables.data.loading"):
        second = load_dataset(tmp_path, image_size=24, cache_dir=cache)
    assert any("from cache" in r.getMessage() and str(entry) in r.getMessage() for r in caplog.records)
    assert entry.stat().st_mtime_ns == written_at  # read, not rewritten
    np.testing.assert_array_equal(second.x_train, first.x_train)
    assert second.fingerprint == first.fingerprint

    # A changed image misses the pre-key, decodes again and writes a second entry under the new fingerprint.
    cv2.imwrite(str(tmp_path / "Dataset" / ODD_FOLDERS[0] / "img_0.jpg"), _image(0, 1234, (40, 40)))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mritune.trainables.data.loading"):
        third = load_dataset(tmp_path, image_size=24, cache_dir=cache)
    assert third.fingerprint != first.fingerprint
    assert not any("from cache" in r.getMessage() for r in caplog.records)
    assert len(list((cache / "datasets").glob("*.npz"))) == 2


def test_corrupt_cache_file_is_rebuilt(tmp_path, caplog):
    _write_class_tree(tmp_path / "Dataset")
    cache = tmp_path / "cache"
    first = load_dataset(tmp_path, image_size=24, cache_dir=cache)
    cache_file(cache, first.fingerprint, 24).write_bytes(b"not a zip file")
    with caplog.at_level(logging.WARNING, logger="mritune.trainables.data.loading"):
        second = load_dataset(tmp_path, image_size=24, cache_dir=cache)
    assert any("unreadable cache file" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(second.x_test, first.x_test)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    _write_class_tree(tmp_path / "Dataset")
    monkeypatch.setenv("MRITUNE_CACHE_DIR", str(tmp_path / "env-cache"))
    ds = load_dataset(tmp_path, image_size=16)
    assert cache_file(tmp_path / "env-cache", ds.fingerprint, 16).is_file()
