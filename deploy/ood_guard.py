"""The out-of-distribution guard's scoring side: one score per image, and why an image was flagged.

A guard is fitted once, at registration (``deploy/ood_fit.py``, from the registered checkpoint and the training
split), and saved as a small JSON file inside the registered model (artifact ``ood_guard``); predict, serve and
both pyfuncs load it with :func:`load_guard` and only score here: nothing is fitted at serving time. This module
travels inside the registered model (``model_logging.PYFUNC_MODULES``), so it imports nothing of mritune but the
other carried modules.

Checks, each a distance from the training images (0 = typical):

- ``colour``: the image is not grayscale (mean chroma of the decoded colour image), an absolute rule;
- ``constant``: a blank or near-constant image (gray-level standard deviation), an absolute rule;
- ``histogram``: its intensity distribution is far from the training images' (earth mover's distance);
- ``coverage``: its foreground (pixels above the training images' Otsu level) covers far more or less of the
  frame than in the training images;
- ``thumbnail``: its 16×16 downsampled layout is far from the training images' (class-conditional Mahalanobis
  distance in their PCA space): a rotated, shifted or rescaled anatomy;
- ``penultimate`` (classifier only): class-conditional Mahalanobis distance of the classifier's penultimate-layer
  features with one shared covariance (Lee et al. 2018), chosen over the energy score by
  ``benchmarks/ood_guard.py``.

The learned checks (the last four) are each divided by their own 99th percentile on the validation split; an
image's ``ood_score`` is the largest of them divided by ``threshold``, the 99th percentile of that largest value over
the validation split (read so that 1% of new images from the same distribution are expected above it). The two rules score ``value / limit``. An image is
``in_distribution`` when its ``ood_score`` is at most 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mritune.trainables.data.preprocess import decode_image
from mritune.trainables.errors import UserInputError

GUARD_FILE = "ood_guard.json"
GUARD_FORMAT = 1
OOD_SCORE = "ood_score"
IN_DISTRIBUTION = "in_distribution"
OOD_REASON = "ood_reason"
OOD_COLUMNS = (OOD_SCORE, IN_DISTRIBUTION, OOD_REASON)
PENULTIMATE_LAYER = "head_dense"  # the classifier head's hidden layer (trainables/classifier/model.py: _head)
HEAD_LAYER = "head"
LEARNED_CHECKS = ("histogram", "coverage", "thumbnail", "penultimate")
HISTOGRAM_BINS = 32
THUMBNAIL_SIZE = 16
# Mean chroma (max - min of B, G, R; 0..255) above which an image is colour. Grey MRI slices stored as 3-channel
# JPEG (quality 50-95) or PNG measure 0; the colour photographs bundled with scikit-image 8-114 (the Hubble deep
# field 8.0, mostly black sky: the other checks flag it).
COLOUR_LIMIT = 8.0
# Gray-level standard deviation below which an image is near-constant (training MRI slices: about 40-70).
MIN_STD = 2.0
NO_GUARD_MESSAGE = ("this model was registered without an OOD guard (before mritune had one): ood_score and "
                    "in_distribution stay empty; register it again to get one")
# Largest score reported: a constant image divides by a standard deviation of 0.
MAX_SCORE = 1e6
_REASONS = {
    "colour": "not grayscale (colour {value:.1f} > {limit:.0f})",
    "constant": "blank or near-constant image (standard deviation {value:.2f} < {limit:.0f})",
    "histogram": "intensity histogram unlike the training images",
    "coverage": "foreground covers {value:.0%} of the image, unlike the training images ({reference:.0%})",
    "thumbnail": "layout unlike the training images (rotated, shifted or rescaled?)",
    "penultimate": "features unlike the training images (Mahalanobis distance at the penultimate layer)",
}


class GuardFileError(UserInputError):
    """An ``ood_guard.json`` that is malformed or does not fit its model."""


@dataclass(frozen=True)
class GaussianScore:
    """Class-conditional Gaussians with one shared covariance over a feature vector; the distance to the nearest.

    ``projection_mean``/``projection`` (the thumbnail check) map raw vectors into the space the Gaussians live in.
    """

    class_means: np.ndarray  # (K, D)
    precision: np.ndarray  # (D, D), the inverse of the shrunk shared covariance
    projection_mean: np.ndarray | None = None  # (P,)
    projection: np.ndarray | None = None  # (P, D)
    _whitening: np.ndarray = field(init=False, repr=False, compare=False)
    _white_means: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:  # precision = L Lᵀ, so (x-μ)ᵀ P (x-μ) = |(x-μ) L|²: one matrix product per batch
            whitening = np.linalg.cholesky(self.precision)
        except np.linalg.LinAlgError:
            raise GuardFileError("the guard's precision matrix is not positive definite") from None
        if self.projection is not None:  # project and whiten in one product
            whitening = self.projection @ whitening
        object.__setattr__(self, "_whitening", whitening)
        object.__setattr__(self, "_white_means", self.class_means @ np.linalg.cholesky(self.precision))

    def distances(self, vectors: np.ndarray) -> np.ndarray:
        """(N, P or D) → (N,) Mahalanobis distance to the nearest class mean."""
        vectors = np.asarray(vectors, dtype=np.float64)
        if self.projection is not None:
            vectors = vectors - self.projection_mean
        white = vectors @ self._whitening
        squared = ((white[:, None, :] - self._white_means[None, :, :]) ** 2).sum(axis=-1)
        return np.sqrt(squared.min(axis=1))

    def to_json(self) -> dict:
        record = {"class_means": self.class_means.tolist(), "precision": self.precision.tolist()}
        if self.projection is not None:
            record.update(projection_mean=self.projection_mean.tolist(), projection=self.projection.tolist())
        return record

    @classmethod
    def from_json(cls, record: dict, name: str) -> GaussianScore:
        means = _matrix(record, "class_means", name)
        precision = _matrix(record, "precision", name)
        if precision.shape != (means.shape[1], means.shape[1]):
            raise GuardFileError(f"{name}: precision {precision.shape} does not match the means {means.shape}")
        projection = None
        if "projection" in record:
            projection = _matrix(record, "projection", name)
            mean = np.asarray(record.get("projection_mean"), dtype=np.float64)
            if projection.shape[1] != means.shape[1] or mean.shape != (projection.shape[0],):
                raise GuardFileError(f"{name}: projection {projection.shape} does not match the means")
            return cls(class_means=means, precision=precision, projection_mean=mean, projection=projection)
        return cls(class_means=means, precision=precision)


@dataclass(frozen=True)
class ImageBatch:
    """What the image-level checks read: uint8 gray images (N, S, S) and each one's colourfulness."""

    images: np.ndarray
    colourfulness: np.ndarray

    @classmethod
    def of(cls, images: np.ndarray, colourfulness: np.ndarray | None = None) -> ImageBatch:
        images = np.asarray(images, dtype=np.uint8)
        colour = np.zeros(len(images)) if colourfulness is None else np.asarray(colourfulness, dtype=np.float64)
        return cls(images=images, colourfulness=colour)

    @property
    def flat(self) -> np.ndarray:
        return self.images.reshape(len(self.images), -1)


@dataclass(frozen=True)
class GuardVerdicts:
    """The guard's answer for a batch: normalised score (above 1: flagged), the flag and a reason per image."""

    scores: np.ndarray
    in_distribution: np.ndarray
    reasons: tuple[str, ...]

    def record(self, index: int) -> dict:
        return {OOD_SCORE: float(self.scores[index]), IN_DISTRIBUTION: bool(self.in_distribution[index]),
                OOD_REASON: self.reasons[index]}

    @property
    def flagged(self) -> int:
        return int((~self.in_distribution).sum())


def empty_record() -> dict:
    """The guard columns of a model registered without a guard: present, and empty."""
    return dict.fromkeys(OOD_COLUMNS)


@dataclass(frozen=True)
class OODGuard:
    """A fitted guard (see the module docstring); build it with ``deploy/ood_fit.py``, load it with load_guard."""

    image_size: int
    threshold: float
    scales: dict  # learned check -> its 99th-percentile distance on the validation split
    histogram_reference: np.ndarray  # (HISTOGRAM_BINS,) the training images' mean histogram
    foreground_level: int
    coverage_reference: float  # the training images' median foreground coverage
    thumbnail: GaussianScore
    penultimate: GaussianScore | None = None
    colour_limit: float = COLOUR_LIMIT
    min_std: float = MIN_STD
    fitted: dict = field(default_factory=dict)  # provenance: split sizes, percentile, validation flagged fraction

    @property
    def needs_penultimate(self) -> bool:
        return self.penultimate is not None

    def check_distances(self, batch: ImageBatch, penultimate: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each learned check's raw distance per image (before normalisation)."""
        distances = {
            "histogram": earth_movers_distance(intensity_histograms(batch.images), self.histogram_reference),
            "coverage": np.abs(foreground_coverage(batch.images, self.foreground_level) - self.coverage_reference),
            "thumbnail": self.thumbnail.distances(thumbnails(batch.images)),
        }
        if self.penultimate is not None:
            if penultimate is None:
                raise ValueError("this guard scores penultimate-layer features; pass them")
            distances["penultimate"] = self.penultimate.distances(penultimate)
        return distances

    def learned_score(self, distances: dict[str, np.ndarray]) -> np.ndarray:
        """max over the learned checks of distance / its scale (not yet divided by the threshold)."""
        return np.max([distances[name] / self.scales[name] for name in distances], axis=0)

    def verdicts(self, batch: ImageBatch, penultimate: np.ndarray | None = None) -> GuardVerdicts:
        """Score a batch: ``ood_score``, ``in_distribution`` and a reason for every flagged image."""
        distances = self.check_distances(batch, penultimate)
        parts = {name: distances[name] / self.scales[name] / self.threshold for name in distances}
        std = batch.flat.std(axis=1)
        parts["colour"] = batch.colourfulness / self.colour_limit
        parts["constant"] = self.min_std / np.maximum(std, self.min_std / MAX_SCORE)
        scores = np.minimum(np.max(list(parts.values()), axis=0), MAX_SCORE)
        values = {"colour": batch.colourfulness, "constant": std,
                  "coverage": foreground_coverage(batch.images, self.foreground_level)}
        reasons = tuple(self._reason(i, parts, values) for i in range(len(scores)))
        return GuardVerdicts(scores=scores, in_distribution=scores <= 1.0, reasons=reasons)

    def _reason(self, index: int, parts: dict, values: dict) -> str:
        """The failed checks, worst first, each with the value that failed it; empty when none failed."""
        failed = sorted((name for name in parts if parts[name][index] > 1.0), key=lambda n: -parts[n][index])
        limits = {"colour": self.colour_limit, "constant": self.min_std}
        texts = []
        for name in failed:
            value = float(values[name][index]) if name in values else 0.0
            texts.append(_REASONS[name].format(value=value, limit=limits.get(name, 0.0),
                                               reference=self.coverage_reference))
        return "; ".join(texts)

    def to_json(self) -> dict:
        record = {
            "format": GUARD_FORMAT, "kind": "mritune-ood-guard", "image_size": self.image_size,
            "threshold": self.threshold, "scales": dict(self.scales), "colour_limit": self.colour_limit,
            "min_std": self.min_std, "histogram_reference": self.histogram_reference.tolist(),
            "foreground_level": self.foreground_level, "coverage_reference": self.coverage_reference,
            "thumbnail": self.thumbnail.to_json(), "fitted": self.fitted,
        }
        if self.penultimate is not None:
            record["penultimate"] = {"layer": PENULTIMATE_LAYER, **self.penultimate.to_json()}
        return record

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")))
        return path

    @classmethod
    def from_json(cls, record: Any) -> OODGuard:
        if not isinstance(record, dict) or record.get("kind") != "mritune-ood-guard":
            raise GuardFileError("not an mritune OOD guard file")
        if record.get("format") != GUARD_FORMAT:
            raise GuardFileError(f"guard format {record.get('format')!r} is not {GUARD_FORMAT}; upgrade mritune")
        try:
            return cls._parse(record)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, GuardFileError):
                raise
            raise GuardFileError(f"malformed OOD guard file ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _parse(cls, record: dict) -> OODGuard:
        penultimate = record.get("penultimate")
        checks = [name for name in LEARNED_CHECKS if name != "penultimate" or penultimate is not None]
        scales = {name: float(record["scales"][name]) for name in checks}
        numbers = [float(record["threshold"]), *scales.values(), float(record["coverage_reference"])]
        if not all(np.isfinite(v) and v > 0 for v in numbers[:-1]) or not np.isfinite(numbers[-1]):
            raise GuardFileError("the guard's threshold and scales must be positive finite numbers")
        reference = np.asarray(record["histogram_reference"], dtype=np.float64)
        if reference.shape != (HISTOGRAM_BINS,):
            raise GuardFileError(f"histogram_reference must hold {HISTOGRAM_BINS} bins")
        return cls(
            image_size=int(record["image_size"]), threshold=float(record["threshold"]), scales=scales,
            histogram_reference=reference, foreground_level=int(record["foreground_level"]),
            coverage_reference=float(record["coverage_reference"]),
            thumbnail=GaussianScore.from_json(record["thumbnail"], "thumbnail"),
            penultimate=None if penultimate is None else GaussianScore.from_json(penultimate, "penultimate"),
            colour_limit=float(record.get("colour_limit", COLOUR_LIMIT)),
            min_std=float(record.get("min_std", MIN_STD)), fitted=dict(record.get("fitted") or {}),
        )


def load_guard(path: str | Path, *, image_size: int | None = None) -> OODGuard:
    """Read an ``ood_guard.json`` (plain JSON: nothing is executed or unpickled); GuardFileError if malformed."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GuardFileError(f"{path} is not valid JSON ({exc})") from None
    guard = OODGuard.from_json(record)
    if image_size is not None and guard.image_size != int(image_size):
        raise GuardFileError(f"{path} was fitted at {guard.image_size} px, the model takes {image_size} px")
    return guard


# --- image-level statistics (shared with the fitting, so fit and score compute them the same way) -------------


def intensity_histograms(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S) → (N, HISTOGRAM_BINS) fractions of pixels per equal-width gray-level bin."""
    flat = np.asarray(images, dtype=np.uint8).reshape(len(images), -1)
    bins = (flat.astype(np.int32) * HISTOGRAM_BINS) >> 8
    offsets = bins + HISTOGRAM_BINS * np.arange(len(flat))[:, None]
    counts = np.bincount(offsets.ravel(), minlength=HISTOGRAM_BINS * len(flat)).reshape(len(flat), HISTOGRAM_BINS)
    return counts / flat.shape[1]


def earth_movers_distance(histograms: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """1-D earth mover's distance between each histogram and ``reference``, in fractions of the gray range."""
    return np.abs(np.cumsum(histograms, axis=1) - np.cumsum(reference)).sum(axis=1) / HISTOGRAM_BINS


def foreground_coverage(images: np.ndarray, level: int) -> np.ndarray:
    """Fraction of each image's pixels above ``level``."""
    return (np.asarray(images).reshape(len(images), -1) > level).mean(axis=1)


def thumbnails(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S) → (N, THUMBNAIL_SIZE²) area-downsampled images in 0..1."""
    import cv2

    size = (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    small = [cv2.resize(np.asarray(image, dtype=np.uint8), size, interpolation=cv2.INTER_AREA) for image in images]
    return np.asarray(small, dtype=np.float64).reshape(len(images), -1) / 255.0


def colourfulness_of_bytes(data: bytes) -> float:
    """Mean chroma (max - min over B, G, R, 0..255) of encoded image bytes; 0 for a grayscale file."""
    import cv2

    if _stored_as_grayscale(data):  # no colour to measure: skip the second decode
        return 0.0
    colour = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return 0.0 if colour is None else colourfulness_of_array(colour)


def _stored_as_grayscale(data: bytes) -> bool:
    """True for a PNG of colour type 0 or 4 (gray, gray + alpha) or a one-component JPEG; False when unsure."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 25:
        return data[25] in (0, 4)
    if not data.startswith(b"\xff\xd8"):
        return False
    position = 2
    while position + 9 < len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame: components at +9
            return data[position + 9] == 1
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return False


def colourfulness_of_array(array: np.ndarray) -> float:
    """Mean chroma of an array image: 0 for (H, W) or (H, W, 1); over the first three channels otherwise."""
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[-1] < 3:
        return 0.0
    channels = array[..., :3] if array.dtype == np.uint8 else np.clip(array[..., :3], 0, 255).astype(np.float32)
    # Element-wise over three planes: a max/min reduction over the last axis of length 3 took ~11 ms a 176×208
    # image here, which alone would have doubled serve's latency.
    first, second, third = channels[..., 0], channels[..., 1], channels[..., 2]
    high = np.maximum(np.maximum(first, second), third)
    low = np.minimum(np.minimum(first, second), third)
    return float((high - low).mean())


def decode_with_colour(source: Any, image_size: int) -> tuple[np.ndarray, float]:
    """One image (path, encoded bytes or array) → the model's uint8 (S, S) gray image and its colourfulness.

    The gray image comes from ``decode_image``, the training's own decoding; the file is read once.
    """
    if isinstance(source, np.ndarray):
        return decode_image(source, image_size), colourfulness_of_array(source)
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    return decode_image(data, image_size), colourfulness_of_bytes(data)


def penultimate_model(keras_model):
    """A Keras model with the classifier's two outputs: ``[probabilities, penultimate features]``.

    The classifier is a chain (input → scaling → backbone → ``head``); the head's layers are called again on the
    backbone's output so that the probabilities are the very same computation as the classifier's (dropout is off
    at inference), and the hidden layer's output comes with them in one forward pass.
    """
    import keras

    try:
        head = keras_model.get_layer(HEAD_LAYER)
        hidden_layer, output_layer = head.get_layer(PENULTIMATE_LAYER), head.layers[-1]
    except ValueError:
        raise GuardFileError(f"the classifier has no {HEAD_LAYER}/{PENULTIMATE_LAYER} layer to take features from") \
            from None
    tensor = keras_model.inputs[0]
    for layer in keras_model.layers[1:-1]:
        tensor = layer(tensor)
    hidden = hidden_layer(tensor)
    return keras.Model(keras_model.inputs[0], [output_layer(hidden), hidden], name="mritune_guarded")


def _matrix(record: dict, key: str, name: str) -> np.ndarray:
    value = np.asarray(record[key], dtype=np.float64)
    if value.ndim != 2 or value.size == 0 or not np.isfinite(value).all():
        raise GuardFileError(f"{name}.{key} must be a non-empty finite matrix")
    return value
