"""The MRI data layer: load a dataset folder into a split, fingerprinted, cached ``MRIDataset``.

``load_dataset`` reads either public layout, or any folder of class folders named by a class list (see
``discovery.py``), decodes every image through the one shared
path (``preprocess.decode_bytes`` + ``preprocess.resize``) in a thread pool (OpenCV releases the GIL), hashes each
file's bytes in the same pass, skips bad files with a reason, and splits stratified with a fixed seed.

Fingerprint: sha256 over the sorted image files, each contributing ``relpath NUL sha256(file bytes)``; bad image
files count (fixing one changes the data), ignored non-image files do not (a new .DS_Store changes nothing).
In the ``named-classes`` layout the class list's order comes first: it sets the labels, so the same files in
another order are another dataset (and another cache entry).

Cache: ``<cache>/datasets/<fingerprint>-<image_size>.npz`` holds the decoded images of a dataset (uncompressed:
loading it is a memory copy). A stat-based pre-key (root, relpaths, sizes, mtimes) maps to the fingerprint in
``<cache>/datasets/index/<pre-key>.json``, so a second load reads no image file at all. A file rewritten with
the same size and mtime would be missed; touch it (or clear the cache) after editing images in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mritune.trainables.data.dataset import MRIDataset
from mritune.trainables.data.discovery import (
    LAYOUT_NAMED_CLASSES,
    LAYOUT_TRAIN_TEST,
    DatasetFiles,
    ImageFile,
    discover,
)
from mritune.trainables.data.preprocess import ImageDecodeError, decode_bytes, resize
from mritune.trainables.errors import UserInputError

log = logging.getLogger(__name__)

CACHE_ENV_VAR = "MRITUNE_CACHE_DIR"
_CACHE_FORMAT = 1  # bump when the .npz content changes, so old entries are not misread


@dataclass(frozen=True, kw_only=True)
class DatasetReport:
    """What ``mritune data inspect`` shows: the layout, counts per class (and split), sizes, bad files."""

    path: str
    root: str
    layout: str
    classes: dict[str, int]  # class (label order) -> decodable images
    splits: dict[str, dict[str, int]] | None  # given splits (train-test layout) -> class -> images
    sizes: dict[str, int]  # "WxH" -> images
    skipped: tuple[tuple[str, str], ...]  # (relpath, reason)
    ignored: tuple[str, ...]  # non-image files and non-class folders
    fingerprint: str

    def to_json_dict(self) -> dict:
        return {
            "path": self.path,
            "root": self.root,
            "layout": self.layout,
            "classes": dict(self.classes),
            "splits": None if self.splits is None else {k: dict(v) for k, v in self.splits.items()},
            "sizes": dict(self.sizes),
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "ignored": list(self.ignored),
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True, kw_only=True)
class _Decoded:
    """Every good image of a dataset at one size, in relpath order, plus what was skipped."""

    images: np.ndarray  # (N, S, S) uint8
    labels: np.ndarray  # (N,) int64
    splits: np.ndarray  # (N,) str: "train"/"test" or ""
    skipped: tuple[tuple[str, str], ...]
    fingerprint: str


def resolve_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else $MRITUNE_CACHE_DIR, else ~/.cache/mritune (not created here)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "mritune").expanduser()


def load_dataset(path: str | Path, *, image_size: int = 128, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, seed: int = 0, cache_dir: str | Path | None = None,
                 classes: tuple[str, ...] | list[str] | None = None) -> MRIDataset:
    """Load, validate, split and cache the dataset under ``path``.

    ``classes`` (names in label order) reads ``<root>/<class>/*`` for those classes; None reads either Kaggle
    layout with the four Alzheimer's-stage classes. See ``discovery.discover`` for the errors.
    """
    _check_arguments(image_size, val_fraction, test_fraction)
    files = discover(path, classes)
    decoded = _load_cached(files, image_size, resolve_cache_dir(cache_dir))
    _check_every_class_loaded(files, decoded)
    given_test = decoded.splits == "test" if files.layout == LAYOUT_TRAIN_TEST else None
    train, val, test = stratified_split(decoded.labels, val_fraction=val_fraction, test_fraction=test_fraction,
                                        seed=seed, given_test=given_test)
    x, y = decoded.images, decoded.labels
    return MRIDataset(x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val], x_test=x[test],
                      y_test=y[test], image_size=image_size, fingerprint=decoded.fingerprint, layout=files.layout,
                      class_names=files.class_names, skipped=decoded.skipped)


def inspect_dataset(path: str | Path, classes: tuple[str, ...] | list[str] | None = None) -> DatasetReport:
    """Describe the dataset under ``path``; decodes every image (at its own size) to find the bad ones."""
    files = discover(path, classes)
    results = _read_files(files.images, image_size=None)
    good = [(f, r) for f, r in zip(files.images, results) if r.error is None]
    has_splits = files.layout == LAYOUT_TRAIN_TEST
    return DatasetReport(
        path=str(Path(path).expanduser()),
        root=str(files.root),
        layout=files.layout,
        classes=_count_classes((f.label for f, _ in good), files.class_names),
        splits={s: _count_classes((f.label for f, _ in good if f.split == s), files.class_names)
                for s in ("train", "test")} if has_splits else None,
        sizes=dict(sorted(Counter(f"{r.shape[1]}x{r.shape[0]}" for _, r in good).items())),
        skipped=tuple((f.relpath, r.error) for f, r in zip(files.images, results) if r.error is not None),
        ignored=files.ignored,
        fingerprint=_fingerprint(files, [r.digest for r in results]),
    )


def stratified_split(labels: np.ndarray, *, val_fraction: float, test_fraction: float, seed: int,
                     given_test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test), stratified by class and deterministic for a seed.

    With ``given_test`` (a boolean mask: the train-test layout's test split), that is the test split and the
    validation split is ``val_fraction`` of the rest; ``test_fraction`` is then unused. A class with at least
    three images gets at least one in each split it is split into.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    if labels.size == 0:
        raise UserInputError("cannot split an empty dataset: no labels given")
    pool = np.ones(len(labels), bool) if given_test is None else ~given_test
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(pool & (labels == label)))
        n_test = 0 if given_test is not None else _share(len(members), test_fraction)
        n_val = _share(len(members), val_fraction)
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test : n_test + n_val])
        parts[0].append(members[n_test + n_val :])
    if given_test is not None:
        parts[2] = [np.flatnonzero(given_test)]
    # Shuffled across classes, so nobody downstream sees class-sorted arrays.
    return tuple(rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts)  # type: ignore[return-value]


def _share(n: int, fraction: float) -> int:
    if fraction <= 0 or n < 3:
        return int(round(n * fraction))
    return int(min(max(1, round(n * fraction)), n - 2))


def _check_arguments(image_size: int, val_fraction: float, test_fraction: float) -> None:
    if not isinstance(image_size, (int, np.integer)) or not 8 <= image_size <= 1024:
        raise UserInputError(f"image_size {image_size!r} is out of range: use an integer from 8 to 1024")
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise UserInputError(f"val_fraction {val_fraction} and test_fraction {test_fraction} must be in [0, 1) with "
                         "val_fraction > 0 and a sum below 1")


def _check_every_class_loaded(files: DatasetFiles, decoded: _Decoded) -> None:
    present = set(np.unique(decoded.labels).tolist())
    missing = [name for i, name in enumerate(files.class_names) if i not in present]
    if missing:
        raise UserInputError(f"no decodable image of class {', '.join(missing)} under {files.root} "
                         f"({len(decoded.skipped)} files skipped as unreadable): replace the bad files")


def _count_classes(labels, class_names: tuple[str, ...]) -> dict[str, int]:
    counts = Counter(labels)
    return {name: int(counts.get(i, 0)) for i, name in enumerate(class_names)}


# --- reading, hashing and decoding --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _FileResult:
    digest: bytes
    image: np.ndarray | None = None  # resized to the image_size asked for; None when none was
    shape: tuple[int, int] | None = None  # (height, width) as stored
    error: str | None = None  # why the file was skipped


def _read_one(path: str, image_size: int | None) -> _FileResult:
    """Read, hash and decode one file; keeps the pixels only when resizing (inspect needs only the size)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return _FileResult(digest=hashlib.sha256(b"").digest(), error=f"unreadable: {exc.strerror or exc}")
    digest = hashlib.sha256(data).digest()
    try:
        gray = decode_bytes(data)
    except ImageDecodeError as exc:
        return _FileResult(digest=digest, error=str(exc))
    image = None if image_size is None else resize(gray, image_size)
    return _FileResult(digest=digest, image=image, shape=gray.shape)


def _read_files(files: tuple[ImageFile, ...], image_size: int | None) -> list[_FileResult]:
    workers = min(32, (os.cpu_count() or 2) + 2)  # decoding releases the GIL; +2 covers file-read waits
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda f: _read_one(f.path, image_size), files, chunksize=64))


def _fingerprint(files: DatasetFiles, digests: list[bytes]) -> str:
    total = hashlib.sha256()
    if files.layout == LAYOUT_NAMED_CLASSES:  # the Kaggle layouts' labels follow from the relpaths alone
        total.update(b"classes\0" + "\0".join(files.class_names).encode() + b"\0\0")
    for file, digest in sorted(zip(files.images, digests), key=lambda pair: pair[0].relpath):
        total.update(file.relpath.encode() + b"\0" + digest)
    return total.hexdigest()


def _decode_all(files: DatasetFiles, image_size: int) -> _Decoded:
    results = _read_files(files.images, image_size)
    good = [i for i, r in enumerate(results) if r.error is None]
    images = np.empty((len(good), image_size, image_size), np.uint8)
    for row, i in enumerate(good):
        images[row] = results[i].image
    return _Decoded(
        images=images,
        labels=np.array([files.images[i].label for i in good], np.int64),
        splits=np.array([files.images[i].split for i in good], dtype="<U8"),
        skipped=tuple((f.relpath, r.error) for f, r in zip(files.images, results) if r.error is not None),
        fingerprint=_fingerprint(files, [r.digest for r in results]),
    )


# --- the cache ------------------------------------------------------------------------------------------------


def _pre_key(files: DatasetFiles, image_size: int) -> str:
    listing = [[f.relpath, f.size, f.mtime_ns] for f in files.images]
    payload = json.dumps([_CACHE_FORMAT, str(files.root.resolve()), image_size, listing])
    if files.layout == LAYOUT_NAMED_CLASSES:  # same files, another class order: other labels
        payload += json.dumps(list(files.class_names))
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_file(cache_dir: Path, fingerprint: str, image_size: int) -> Path:
    """Where the decoded images of a dataset (by fingerprint) at ``image_size`` are cached."""
    return cache_dir / "datasets" / f"{fingerprint}-{image_size}.npz"


def _load_cached(files: DatasetFiles, image_size: int, cache_dir: Path) -> _Decoded:
    index = cache_dir / "datasets" / "index" / f"{_pre_key(files, image_size)}.json"
    fingerprint = _read_index(index)
    if fingerprint is not None:
        decoded = _read_npz(cache_file(cache_dir, fingerprint, image_size), files)
        if decoded is not None:
            log.info("loaded %s from cache %s", files.root, cache_file(cache_dir, fingerprint, image_size))
            return decoded
    decoded = _decode_all(files, image_size)
    _write_cache(cache_dir, index, decoded, image_size)
    return decoded


def _read_index(index: Path) -> str | None:
    try:
        return str(json.loads(index.read_text())["fingerprint"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable cache index %s (%s)", index, exc)
        return None


def _read_npz(path: Path, files: DatasetFiles) -> _Decoded | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            decoded = _Decoded(
                images=npz["images"], labels=npz["labels"], splits=npz["splits"],
                skipped=tuple(zip(npz["skipped_paths"].tolist(), npz["skipped_reasons"].tolist())),
                fingerprint=str(npz["fingerprint"]),
            )
            count = int(npz["count"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable cache file %s (%s); decoding the images again", path, exc)
        return None
    if count != len(files.images) or len(decoded.images) + len(decoded.skipped) != count:
        log.warning("cache file %s does not match %s; decoding the images again", path, files.root)
        return None
    return decoded


def _write_cache(cache_dir: Path, index: Path, decoded: _Decoded, image_size: int) -> None:
    """Write the .npz and the pre-key index atomically (temp file + rename); a failure only costs speed."""
    target = cache_file(cache_dir, decoded.fingerprint, image_size)
    try:
        index.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            temp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.npz")
            np.savez(temp, images=decoded.images, labels=decoded.labels, splits=decoded.splits,
                     skipped_paths=np.array([p for p, _ in decoded.skipped], dtype=str),
                     skipped_reasons=np.array([r for _, r in decoded.skipped], dtype=str),
                     fingerprint=np.array(decoded.fingerprint),
                     count=np.array(len(decoded.images) + len(decoded.skipped)))
            os.replace(temp, target)
        temp_index = index.with_name(f".{index.stem}.{uuid.uuid4().hex[:8]}.json")
        temp_index.write_text(json.dumps({"fingerprint": decoded.fingerprint}))
        os.replace(temp_index, index)
    except OSError as exc:
        log.warning("could not write the dataset cache under %s (%s); set %s to a writable folder",
                    cache_dir, exc, CACHE_ENV_VAR)
