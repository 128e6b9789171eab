"""Fitting the out-of-distribution guard (``deploy/ood_guard.py``) at registration, from the registered
checkpoint and the training split; the validation split sets each check's scale and the threshold (99th
percentiles).

The platform's registry calls :func:`fit_classifier_guard_file` or :func:`fit_generator_guard_file` with the
checkpoint's ``.keras`` file and the search's dataset; they write ``ood_guard.json`` for the logged model and
return the metrics logged with the test metrics (the share of test images, and for the DCGAN of its own samples,
that the guard flags). ``benchmarks/ood_guard.py`` and the tests call :func:`fit_guard` directly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mritune.deploy.ood_guard import (
    GUARD_FILE,
    GaussianScore,
    ImageBatch,
    OODGuard,
    foreground_coverage,
    intensity_histograms,
    penultimate_model,
    thumbnails,
)
from mritune.trainables.errors import UserInputError

PERCENTILE = 99.0
# How the threshold's 99th percentile is read off the validation scores: Hyndman & Fan's type 6, the (n+1)·p-th
# order statistic, whose expected share of new images above it is exactly 1%. numpy's default (type 7) sits below
# the top 2.4 of 144 validation images and flagged 2.2% of held-out images on average (benchmarks/ood_guard.py's
# calibration study, 1000 random splits of 288 held-out images); type 6 flagged 1.2%.
THRESHOLD_METHOD = "weibull"
# Principal components of the 16×16 thumbnails kept for the layout check (at most; fewer with few images).
THUMBNAIL_COMPONENTS = 24
# Generated samples scored when a DCGAN is registered, and the seed of their noise (the same checkpoint always
# gets the same fraction).
GENERATOR_SAMPLES = 256
GENERATOR_SEED = 20_260_423
FEATURE_BATCH = 64
_TINY = 1e-9


@dataclass(frozen=True)
class FittedGuard:
    """A guard written for a model being registered, and the metrics logged with its test metrics."""

    path: Path
    guard: OODGuard
    metrics: dict


def fit_guard(*, train_images: np.ndarray, train_labels: np.ndarray, val_images: np.ndarray,
              train_features: np.ndarray | None = None, val_features: np.ndarray | None = None) -> OODGuard:
    """Fit a guard on the training split; scale each check and set the threshold on the validation split.

    Args:
        train_images: uint8 (N, S, S) training images, at the model's size.
        train_labels: int (N,) their classes (the Gaussians are class-conditional).
        val_images: uint8 (M, S, S) validation images: each check's scale is its 99th percentile over them, and
            the threshold the 99th percentile of the largest scaled check.
        train_features, val_features: the classifier's penultimate-layer features of those images, or None for a
            guard without the feature check (the DCGAN's).

    Raises:
        UserInputError: A split is empty, the labels do not match the images, or only one of the feature arrays
            is given.

    Example:
        >>> guard = fit_guard(train_images=x_train, train_labels=y_train, val_images=x_val)  # doctest: +SKIP
    """
    train_images, val_images = np.asarray(train_images, np.uint8), np.asarray(val_images, np.uint8)
    labels = np.asarray(train_labels, dtype=np.int64)
    if len(train_images) < 2 or len(val_images) < 1 or len(labels) != len(train_images):
        raise UserInputError("the OOD guard needs at least 2 labelled training images and 1 validation image")
    if (train_features is None) != (val_features is None):
        raise UserInputError("pass both train_features and val_features, or neither")
    level = otsu_level(train_images)
    thumbs = thumbnails(train_images)
    guard = OODGuard(
        image_size=int(train_images.shape[1]), threshold=1.0, scales={},
        histogram_reference=intensity_histograms(train_images).mean(axis=0), foreground_level=level,
        coverage_reference=float(np.median(foreground_coverage(train_images, level))),
        thumbnail=fit_gaussians(thumbs, labels, components=THUMBNAIL_COMPONENTS),
        penultimate=None if train_features is None else fit_gaussians(np.asarray(train_features), labels),
    )
    return calibrate(guard, ImageBatch.of(val_images), val_features, train_images=len(train_images))


def calibrate(guard: OODGuard, val: ImageBatch, val_features: np.ndarray | None, *, train_images: int) -> OODGuard:
    """Each learned check's scale (its 99th percentile on the validation split, so that every check weighs its
    tail alike) and the threshold (the 99th percentile, THRESHOLD_METHOD, of the largest scaled check)."""
    distances = guard.check_distances(val, val_features)
    scaled = replace(guard, scales={name: max(float(np.percentile(d, PERCENTILE)), _TINY)
                                    for name, d in distances.items()})
    largest = scaled.learned_score(distances)
    calibrated = replace(scaled, threshold=max(float(np.percentile(largest, PERCENTILE, method=THRESHOLD_METHOD)),
                                               _TINY))
    flagged = calibrated.verdicts(val, val_features).flagged / len(val.images)
    fitted = {"train_images": int(train_images), "val_images": len(val.images), "percentile": PERCENTILE,
              "percentile_method": THRESHOLD_METHOD,
              "val_flagged_fraction": flagged, "checks": sorted(distances)}
    return replace(calibrated, fitted=fitted)


def fit_gaussians(vectors: np.ndarray, labels: np.ndarray, *, components: int | None = None) -> GaussianScore:
    """Class means and one shared covariance (Ledoit-Wolf shrunk) of ``vectors``; optionally in PCA space first."""
    from sklearn.covariance import ledoit_wolf

    vectors = np.asarray(vectors, dtype=np.float64)
    projection_mean = projection = None
    if components is not None:
        projection_mean = vectors.mean(axis=0)
        _, _, rows = np.linalg.svd(vectors - projection_mean, full_matrices=False)
        keep = max(1, min(components, len(vectors) - 1, rows.shape[0]))
        projection = rows[:keep].T
        vectors = (vectors - projection_mean) @ projection
    classes = np.unique(labels)
    means = np.stack([vectors[labels == c].mean(axis=0) for c in classes])
    centred = vectors - means[np.searchsorted(classes, labels)]
    covariance, _ = ledoit_wolf(centred, assume_centered=True)
    # A dimension that never varies (a dead ReLU unit) keeps a floor, so the precision stays finite.
    floor = max(float(np.trace(covariance)) / covariance.shape[0], 1.0) * 1e-6
    precision = np.linalg.inv(covariance + floor * np.eye(covariance.shape[0]))
    return GaussianScore(class_means=means, precision=(precision + precision.T) / 2,
                         projection_mean=projection_mean, projection=projection)


def otsu_level(images: np.ndarray) -> int:
    """Otsu's threshold over all the images' pixels: the gray level that best splits background from tissue."""
    counts = np.bincount(np.asarray(images, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * levels)
    total, total_mean = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - mean * total) ** 2 / (weight * (total - weight))
    return int(np.nanargmax(np.where(np.isfinite(between), between, np.nan)))


class PenultimateFeatures:
    """A classifier's probabilities and penultimate-layer features for uint8 images, in batches (one trace)."""

    def __init__(self, keras_model) -> None:
        from mritune.deploy.model_files import compiled_inference

        size = int(keras_model.input_shape[1])
        self.image_size = size
        self._infer = compiled_inference(penultimate_model(keras_model), (size, size, 1))

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, hidden = [], []
        for start in range(0, len(images), FEATURE_BATCH):
            chunk = np.asarray(images[start : start + FEATURE_BATCH], dtype=np.float32)[..., None]
            p, h = self._infer(chunk)
            probs.append(p)
            hidden.append(h)
        return np.concatenate(probs), np.concatenate(hidden)


def fit_classifier_guard(keras_model, *, train_images, train_labels, val_images) -> OODGuard:
    """The classifier's guard: image-level checks plus Mahalanobis on its penultimate-layer features."""
    features = PenultimateFeatures(keras_model)
    return fit_guard(train_images=train_images, train_labels=train_labels, val_images=val_images,
                     train_features=features(train_images)[1], val_features=features(val_images)[1])


def fit_classifier_guard_file(keras_path: str | Path, dataset, *, image_size: int, out_dir: str | Path) -> FittedGuard:
    """At registration: fit the classifier's guard, write it, and measure it on the test split."""
    from mritune.deploy.model_files import load_keras_model
    from mritune.trainables.data.arrays import resized

    model = load_keras_model(keras_path)
    train, val, test = (resized(x, image_size) for x in (dataset.x_train, dataset.x_val, dataset.x_test))
    guard = fit_classifier_guard(model, train_images=train, train_labels=dataset.y_train, val_images=val)
    flagged = guard.verdicts(ImageBatch.of(test), PenultimateFeatures(model)(test)[1]).flagged
    return _written(guard, out_dir, {"test_ood_flagged_fraction": flagged / max(len(test), 1)})


def fit_generator_guard_file(keras_path: str | Path, dataset, *, image_size: int, latent_dim: int,
                             out_dir: str | Path) -> FittedGuard:
    """At registration: fit the DCGAN's guard on the real images and score the generator's own samples."""
    from mritune.deploy.model_files import load_keras_model
    from mritune.deploy.pyfunc_generator import GeneratorSampler
    from mritune.trainables.data.arrays import resized

    train, val, test = (resized(x, image_size) for x in (dataset.x_train, dataset.x_val, dataset.x_test))
    guard = fit_guard(train_images=train, train_labels=dataset.y_train, val_images=val)
    sampler = GeneratorSampler(keras_model=load_keras_model(keras_path), latent_dim=latent_dim, image_size=image_size)
    samples = sampler.sample(GENERATOR_SAMPLES, seed=GENERATOR_SEED)
    metrics = {
        "test_samples_ood_flagged_fraction": guard.verdicts(ImageBatch.of(samples)).flagged / len(samples),
        "test_ood_flagged_fraction": guard.verdicts(ImageBatch.of(test)).flagged / max(len(test), 1),
    }
    return _written(guard, out_dir, metrics)


def _written(guard: OODGuard, out_dir: str | Path, metrics: dict) -> FittedGuard:
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return FittedGuard(path=guard.save(folder / GUARD_FILE), guard=guard, metrics=metrics)
