"""Realism with a floor: a Fréchet distance on features of a network trained on the same data, and what two sets of
real images score against each other.

- ``frechet_distance``: the distance between Gaussian fits of two feature sets (Heusel et al. 2017, "FID"), on the
  penultimate features of a small fixed CNN trained here, not on downloaded Inception weights (none in a search,
  and ImageNet features say little about grayscale MRI slices). Lower is better; two samples of one distribution
  score near zero, less so the fewer images there are (the covariances are estimated from them), which is why a
  number is read against its floor.
- The feature network: three strided convolutions, global average pooling (the features, ``FEATURE_DIM``) and a
  linear classifier, trained once per dataset on the training split's class labels at the GAN's image size,
  grayscale in [-1, 1] as the generator draws. It is cached on disk beside the decoded datasets
  (``$MRITUNE_CACHE_DIR/feature_nets/``), keyed by the dataset's fingerprint, the image size, a digest of the
  training split (another split of the same files trains on other images) and ``FEATURE_NET_VERSION``. Written to
  a temporary name and renamed, under a file lock: two trials in two processes that ask at once get one file,
  trained once. Loaded with ``safe_mode=True``. Training takes a few seconds on one CPU core at 32-64 px
  (about 1,000 images). Seeds are passed to every initializer and the batch order comes from its own generator,
  so training it leaves the process's global random state (the GAN's) untouched.
- Floors (``RealismReference``): SWD and FD of real training images against the held-out real images (the
  validation split for the epoch metrics, the test split for the test metrics), with as many training images as
  the generated-vs-real comparison uses held-out ones, so a generator's number reads against what a perfect
  generator (one that draws the training distribution) would score. Fixed seeds: every trial of a search on one
  dataset gets the same floors; computed once per process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mritune.trainables.data.dataset import MRIDataset

logger = logging.getLogger(__name__)

FEATURE_NET_VERSION = 1  # bump when the network or its training changes: cached files of older ones are not read
FEATURE_DIM = 64
FEATURE_EPOCHS = 4
FEATURE_BATCH = 32
FEATURE_SEED = 20_250_124
FEATURES_LAYER = "features"
FEATURE_NETS_FOLDER = "feature_nets"  # under the cache folder (trainables/data/loading.resolve_cache_dir)
LOCK_TIMEOUT_S = 600.0  # a trial waiting this long for another's training has met a stuck process, not a slow one
_FLOOR_SEED = 18  # which training images are the floor's reference set, and the floor SWD's random patches
_PREDICT_BATCH = 64

_floors_cache: dict[tuple, "RealismFloors"] = {}  # per process: (network file, held-out digest, seed) -> floors


# --- the Fréchet distance: pure NumPy/SciPy ---------------------------------------------------------------------


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of feature vectors ``(N, D)``, in float64."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The Fréchet distance between Gaussian fits of two feature sets ``(N, D)`` and ``(M, D)``:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``.

    ``scipy.linalg.sqrtm``'s result is taken as real (round-off leaves a tiny imaginary part); when it is not
    finite (near-singular covariances, e.g. fewer images than features) both covariances get ``1e-6`` on the
    diagonal, as the reference FID code does. Round-off below zero reads as 0.

    Raises:
        ValueError: Fewer than 2 vectors in a set (no covariance), or sets of different feature sizes.
    """
    import warnings

    from scipy.linalg import LinAlgWarning, sqrtm

    a, b = _feature_matrix(features_a, "features_a"), _feature_matrix(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance needs feature vectors of one size, got {a.shape[1]} and {b.shape[1]}")
    (mu_a, cov_a), (mu_b, cov_b) = gaussian_fit(a), gaussian_fit(b)
    with warnings.catch_warnings():
        # A singular product (e.g. a generator whose images are all alike) is expected, not a fault: checked below.
        warnings.simplefilter("ignore", LinAlgWarning)
        covmean = sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(cov_a)) * 1e-6
            covmean = sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))
    return max(0.0, value)


def _feature_matrix(features: np.ndarray, name: str) -> np.ndarray:
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"frechet_distance: {name} must be (N, D) feature vectors, got shape {matrix.shape}")
    if len(matrix) < 2:
        raise ValueError(f"frechet_distance needs at least 2 feature vectors in each set ({name} has "
                         f"{len(matrix)}): a covariance needs 2 samples")
    if not np.isfinite(matrix).all():
        raise ValueError(f"frechet_distance: {name} holds NaN/inf")
    return matrix


# --- the feature network: backend-neutral Keras 3 ---------------------------------------------------------------


def build_feature_network(image_size: int, num_classes: int, *, seed: int = FEATURE_SEED):
    """The untrained classifier whose ``FEATURES_LAYER`` output is the feature vector; inputs (S, S, 1) in [-1, 1].

    Strided convolutions down to 4-8 px whatever the size (32 px: 3, 256 px: 6), so training stays cheap.
    """
    import keras

    inputs = keras.Input(shape=(image_size, image_size, 1), name="image")
    x, size, filters = inputs, image_size, 16
    for block in range(6):
        if size <= 4 or (block >= 3 and size <= 8):
            break
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=keras.initializers.HeNormal(seed=seed + block),
                                name=f"conv{block + 1}")(x)
        size, filters = size // 2, min(filters * 2, FEATURE_DIM)
    x = keras.layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
    logits = keras.layers.Dense(num_classes, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 10),
                                name="logits")(x)
    return keras.Model(inputs, logits, name="mritune_realism_features")


def train_feature_network(images: np.ndarray, labels: np.ndarray, num_classes: int, *, seed: int = FEATURE_SEED,
                          epochs: int = FEATURE_EPOCHS, batch_size: int = FEATURE_BATCH):
    """Train :func:`build_feature_network` on ``images`` (N, S, S, 1) in [-1, 1] and their integer ``labels``.

    Full batches only (one traced train step), in an order drawn from ``seed``'s own generator.
    """
    import keras

    model = build_feature_network(images.shape[1], num_classes, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    batch = min(batch_size, len(images))
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=np.int64)
    accuracy = float("nan")
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for start in range(0, len(order) - batch + 1, batch):
            rows = order[start:start + batch]
            _, accuracy = model.train_on_batch(images[rows], labels[rows])
    logger.info("feature network trained: %d images at %d px, %d epochs, last batch accuracy %.2f",
                len(images), images.shape[1], epochs, float(accuracy))
    return model


@dataclass(frozen=True, eq=False)
class FeatureNetwork:
    """The loaded feature network of one dataset at one size."""

    model: Any  # keras.Model: image -> features
    path: Path  # its cached .keras file
    trained: bool  # whether this call trained it (False: loaded from the cache)

    def features(self, images: np.ndarray) -> np.ndarray:
        """Penultimate-layer features ``(N, FEATURE_DIM)`` of images (N, S, S, 1) in [-1, 1]."""
        from mritune.trainables.compiled_steps import BatchPredictor

        predict = BatchPredictor(model=self.model, batch_size=_PREDICT_BATCH)
        return np.asarray(predict(np.asarray(images, dtype=np.float32)), dtype=np.float64)


def feature_network_path(data: "MRIDataset", image_size: int, *, cache_dir: str | Path | None = None) -> Path:
    """Where ``data``'s feature network at ``image_size`` is cached."""
    from mritune.trainables.data.loading import resolve_cache_dir

    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(data.x_train).tobytes())
    digest.update(np.asarray(data.y_train, dtype=np.int64).tobytes())
    digest.update("\0".join(data.class_names).encode())
    name = f"{data.fingerprint[:32]}-{image_size}px-{digest.hexdigest()[:12]}-v{FEATURE_NET_VERSION}.keras"
    return resolve_cache_dir(cache_dir) / FEATURE_NETS_FOLDER / name


def feature_network(data: "MRIDataset", image_size: int, *, cache_dir: str | Path | None = None) -> FeatureNetwork:
    """``data``'s feature network at ``image_size``: loaded from the cache, or trained on the training split and
    cached (one process trains, any other asking meanwhile waits on the lock and loads its file)."""
    from filelock import FileLock

    path = feature_network_path(data, image_size, cache_dir=cache_dir)
    model = _load_features_model(path)
    if model is not None:
        return FeatureNetwork(model=model, path=path, trained=False)
    classifier = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.with_name(path.name + ".lock")), timeout=LOCK_TIMEOUT_S):
            model = _load_features_model(path)  # another process may have written it while this one waited
            if model is not None:
                return FeatureNetwork(model=model, path=path, trained=False)
            classifier = _train(data, image_size)
            _save(classifier, path)
    except OSError as exc:  # an unwritable cache (or a lock held past LOCK_TIMEOUT_S) costs a training, not the trial
        logger.warning("could not cache the feature network under %s (%s); using one trained in memory, set "
                       "MRITUNE_CACHE_DIR to a writable folder", path.parent, exc)
        classifier = classifier if classifier is not None else _train(data, image_size)
        return FeatureNetwork(model=_features_of(classifier), path=path, trained=True)
    # What is used is always what was saved: a trial that trained the network and one that loaded it measure alike.
    return FeatureNetwork(model=_load_features_model(path, required=True), path=path, trained=True)


def _train(data: "MRIDataset", image_size: int):
    from mritune.trainables.data.arrays import resized
    from mritune.trainables.dcgan.images import to_unit_range

    images = to_unit_range(resized(data.x_train, image_size))
    return train_feature_network(images, data.y_train, data.num_classes)


def _save(model, path: Path) -> None:
    temp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.keras")
    try:
        model.save(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _load_features_model(path: Path, *, required: bool = False):
    """The cached network cut at its features, or None when there is no readable file (an unreadable one is
    logged and trained again)."""
    import zipfile

    import keras

    if not path.is_file():
        if required:
            raise FileNotFoundError(f"the feature network {path} was not written")
        return None
    try:
        classifier = keras.saving.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if required:
            raise
        logger.warning("ignoring unreadable feature network %s (%s); training it again", path, exc)
        return None
    return _features_of(classifier)


def _features_of(classifier):
    """The classifier cut at its features (the penultimate layer)."""
    import keras

    return keras.Model(classifier.inputs, classifier.get_layer(FEATURES_LAYER).output)


# --- the reference a generator is measured against, and its floors ----------------------------------------------


@dataclass(frozen=True)
class RealismFloors:
    """SWD and FD of real training images against the held-out real images: what a perfect generator scores."""

    swd: float
    fd: float
    images: int  # how many images on each side


@dataclass(frozen=True, eq=False)
class RealismReference:
    """What a generator's images are compared with on one held-out split: the feature network, the held-out
    images' features, and the real-vs-real floors."""

    network: FeatureNetwork
    held_out_features: np.ndarray
    floors: RealismFloors

    def frechet_distance(self, images: np.ndarray) -> float:
        """FD of generated images (N, S, S, 1) in [-1, 1] against the held-out images."""
        return frechet_distance(self.network.features(images), self.held_out_features)


def realism_reference(data: "MRIDataset", image_size: int, held_out: np.ndarray, *,
                      cache_dir: str | Path | None = None) -> RealismReference:
    """The reference for ``held_out`` (real images (N, S, S, 1) in [-1, 1] from the validation or test split):
    the feature network (cached on disk), the held-out features and the floors (cached in this process)."""
    network = feature_network(data, image_size, cache_dir=cache_dir)
    held_out_features = network.features(held_out)
    key = (str(network.path), hashlib.sha256(np.ascontiguousarray(held_out).tobytes()).hexdigest(), _FLOOR_SEED)
    floors = _floors_cache.get(key)
    if floors is None:
        floors = _floors(network, training_sample(data, image_size, len(held_out)), held_out, held_out_features)
        _floors_cache[key] = floors
    return RealismReference(network=network, held_out_features=held_out_features, floors=floors)


def training_sample(data: "MRIDataset", image_size: int, count: int) -> np.ndarray:
    """``count`` training images (fewer if the split is smaller), a fixed draw, in [-1, 1]: the floor's real side."""
    from mritune.trainables.data.arrays import resized
    from mritune.trainables.dcgan.images import to_unit_range

    rows = np.sort(np.random.default_rng(_FLOOR_SEED).permutation(len(data.x_train))[:count])
    return to_unit_range(resized(data.x_train[rows], image_size))


def _floors(network: FeatureNetwork, reference: np.ndarray, held_out: np.ndarray,
            held_out_features: np.ndarray) -> RealismFloors:
    from mritune.trainables.dcgan.metrics import sliced_wasserstein_distance

    return RealismFloors(
        swd=sliced_wasserstein_distance(reference, held_out, seed=_FLOOR_SEED),
        fd=frechet_distance(network.features(reference), held_out_features),
        images=min(len(reference), len(held_out)),
    )
