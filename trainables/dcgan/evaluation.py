"""The DCGAN's test-split evaluation: ``test_swd`` (sliced Wasserstein distance between generated images and the
test images, not the validation images that chose the epoch), ``test_fd`` (the Fréchet distance on the dataset's
feature network, ``realism.py``), their real-vs-real floors ``test_swd_floor`` and ``test_fd_floor`` (training
images against the same test images) and ``test_ms_ssim_diversity``, plus a sample grid.
``train_dcgan`` calls :func:`generator_test_evaluation` on the generator it just trained; the platform's registry
calls :func:`evaluate_generator_checkpoint` (through the task registry) on the checkpoint a search ranked best.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mritune.trainables.data.dataset import MRIDataset
from mritune.trainables.errors import UserInputError
from mritune.trainables.evaluation import Evaluation, load_model

if TYPE_CHECKING:
    from mritune.trainables.dcgan.realism import RealismReference

# Fixed seeds: the same checkpoint evaluated twice gives the same numbers (the gate compares them across searches).
_TEST_NOISE_SEED = 20_240_917
_TEST_SWD_SEED = 7


def generator_test_evaluation(generator, data: MRIDataset, *, image_size: int, latent_dim: int,
                              out_dir: str | Path) -> Evaluation:
    """SWD, FD (each with its real-vs-real floor) and MS-SSIM diversity of a generator's images against the test
    split, and a sample grid."""
    from mritune.trainables.dcgan.images import write_sample_grid
    from mritune.trainables.dcgan.metrics import mean_ms_ssim, sliced_wasserstein_distance
    from mritune.trainables.dcgan.realism import realism_reference

    if len(data.x_test) < 2:
        raise UserInputError("the DCGAN's test evaluation needs at least 2 test images")
    real = held_out_test_images(data, image_size)
    noise = np.random.default_rng(_TEST_NOISE_SEED).standard_normal((len(real), latent_dim)).astype(np.float32)
    fake = np.asarray(generator.predict(noise, batch_size=64, verbose=0), dtype=np.float32)
    if not np.isfinite(fake).all():
        raise UserInputError("the generator produces NaN/inf images: it cannot be evaluated")
    reference = realism_reference(data, image_size, real)
    metrics = {
        "test_swd": sliced_wasserstein_distance(fake, real, seed=_TEST_SWD_SEED),
        "test_swd_floor": reference.floors.swd,
        "test_fd": reference.frechet_distance(fake),
        "test_fd_floor": reference.floors.fd,
        "test_ms_ssim_diversity": mean_ms_ssim(fake, seed=_TEST_SWD_SEED),
    }
    samples = write_sample_grid(fake[:16], Path(out_dir) / "test_samples.png")
    return Evaluation(metrics=metrics, artifacts={"test_samples": str(samples)}, outputs=fake)


def held_out_test_images(data: MRIDataset, image_size: int) -> np.ndarray:
    """The test images the generator is compared with, in [-1, 1]."""
    from mritune.trainables.data.arrays import resized
    from mritune.trainables.dcgan.images import EVAL_IMAGES, to_unit_range

    return to_unit_range(resized(data.x_test[:EVAL_IMAGES], image_size))


@dataclass(frozen=True, eq=False)
class FDResampler:
    """``test_fd`` (the gate metric) of a checkpoint's generated test images against a resample of the test
    images (``trainables.evaluation.GateResampler``)."""

    reference: RealismReference  # realism_reference() of held_out_test_images(): what the evaluator compares with
    # One FD on resampled test features is a 64x64 matrix square root, milliseconds (the generated images' features
    # are computed once per outputs), so a bootstrap can draw many test-image resamples (an SWD took half a second).
    resamples: int = 100
    # (the outputs last asked about, their features): a re-run scores the same outputs on every resample.
    _last: list = field(default_factory=list, repr=False)

    @property
    def n_images(self) -> int:
        return len(self.reference.held_out_features)

    def __call__(self, outputs: np.ndarray, indices: np.ndarray) -> float:
        from mritune.trainables.dcgan.realism import frechet_distance

        if not self._last or self._last[0] is not outputs:  # holding outputs keeps the identity check sound
            self._last[:] = [outputs, self.reference.network.features(outputs)]
        return frechet_distance(self._last[1], self.reference.held_out_features[indices])


def generator_test_resampler(data: MRIDataset, image_size: int) -> FDResampler:
    """The DCGAN's gate metric on resampled test images (registered as ``Task.test_resampler``)."""
    from mritune.trainables.dcgan.realism import realism_reference

    return FDResampler(reference=realism_reference(data, image_size, held_out_test_images(data, image_size)))


def evaluate_generator_checkpoint(folder: Path, state: dict[str, Any], data: MRIDataset,
                                  out_dir: Path) -> Evaluation:
    """The test evaluation of the generator saved in a checkpoint folder (``state`` is its state.json)."""
    from mritune.trainables.dcgan import GENERATOR_FILE

    generator = load_model(folder / GENERATOR_FILE)
    return generator_test_evaluation(generator, data, image_size=int(state["image_size"]),
                                     latent_dim=int(state["latent_dim"]), out_dir=out_dir)
