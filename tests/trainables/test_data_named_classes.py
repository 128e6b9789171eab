"""The third layout: any folder of class folders, with the class names and their order given (``data.classes``)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mritune.trainables.data.discovery import LAYOUT_NAMED_CLASSES
from mritune.trainables.data.loading import inspect_dataset, load_dataset
from tests.trainables.test_data import _assert_labels_match_pixels, _write_class_tree

# As an OASIS/ADNI slice export might name them; label i is written with grey level 40 + 50 i (test_data).
FOLDERS = ("cn", "Mci", "AD")
CLASSES = ["CN", "MCI", "AD"]
COUNTS = (8, 7, 6)


def test_named_classes_read_split_and_label_in_the_given_order(tmp_path):
    _write_class_tree(tmp_path / "export" / "slices", names=FOLDERS, counts=COUNTS)
    (tmp_path / "export" / "slices" / "unsorted").mkdir()  # a folder that is not a listed class: ignored
    ds = load_dataset(tmp_path / "export", classes=CLASSES, image_size=16, cache_dir=tmp_path / "cache")
    assert ds.layout == LAYOUT_NAMED_CLASSES and ds.class_names == tuple(CLASSES)
    _assert_labels_match_pixels(ds)
    assert ds.summary()["train"].keys() == set(CLASSES)
    for split in (ds.y_train, ds.y_val, ds.y_test):  # stratified: every class in every split
        assert sorted(np.unique(split).tolist()) == [0, 1, 2]
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == sum(COUNTS)
    report = inspect_dataset(tmp_path / "export", CLASSES)
    assert report.classes == dict(zip(CLASSES, COUNTS)) and "unsorted" in report.ignored
    assert report.fingerprint == ds.fingerprint


def test_another_class_order_is_another_dataset_with_other_labels(tmp_path):
    _write_class_tree(tmp_path / "data", names=FOLDERS, counts=COUNTS)
    cache = tmp_path / "cache"
    first = load_dataset(tmp_path / "data", classes=CLASSES, image_size=16, cache_dir=cache)
    assert load_dataset(tmp_path / "data", classes=CLASSES, image_size=16, cache_dir=cache).fingerprint == \
        first.fingerprint  # stable, and the second load comes from the cache
    reordered = load_dataset(tmp_path / "data", classes=["AD", "CN", "MCI"], image_size=16, cache_dir=cache)
    assert reordered.fingerprint != first.fingerprint
    assert reordered.summary()["train"]["AD"] == first.summary()["train"]["AD"]
    # Same images, labels remapped: AD (grey level of label 2) is now label 0.
    ad_rows = reordered.x_train.reshape(len(reordered.x_train), -1).mean(axis=1) > 120
    assert (reordered.y_train[ad_rows] == 0).all()
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "data", copy)
    assert inspect_dataset(copy, CLASSES).fingerprint == first.fingerprint  # like the Kaggle layouts


def test_a_class_named_in_the_spec_but_missing_on_disk_is_a_one_line_error(tmp_path):
    _write_class_tree(tmp_path / "data", names=("CN", "AD"), counts=(4, 4))
    with pytest.raises(ValueError) as error:
        load_dataset(tmp_path / "data", classes=CLASSES, cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert "\n" not in message and "no class folder for MCI" in message and "data.classes (CN, MCI, AD)" in message
    with pytest.raises(ValueError, match="no folder of data.classes under"):
        load_dataset(tmp_path / "data", classes=["Healthy", "Sick"], cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("classes", [["CN"], ["CN", "cn"], ["CN", ""]])
def test_a_bad_class_list_is_a_one_line_error(tmp_path, classes):
    _write_class_tree(tmp_path / "data", names=FOLDERS, counts=COUNTS)
    with pytest.raises(ValueError, match="classes") as error:
        load_dataset(tmp_path / "data", classes=classes, cache_dir=tmp_path / "cache")
    assert "\n" not in str(error.value)


def test_the_kaggle_layouts_keep_their_four_classes_and_fingerprints(tmp_path):
    _write_class_tree(tmp_path / "Dataset")
    ds = load_dataset(tmp_path, image_size=16, cache_dir=tmp_path / "cache")
    assert ds.class_names == ("NonDemented", "VeryMildDemented", "MildDemented", "ModerateDemented")
    assert inspect_dataset(tmp_path).fingerprint == ds.fingerprint
