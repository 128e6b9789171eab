"""`train_dcgan`: one DCGAN training, reporting losses, SWD, MS-SSIM diversity and a sample grid every epoch.

Backend-neutral: the discriminator and the combined generator→frozen-discriminator model are stepped with
``train_on_batch`` (no backend-specific train_step). An epoch is one pass over the training images: one
discriminator update per real batch (real and generated images together) and one generator update every
``d_steps`` discriminator updates.

Divergence stops the training with ``TrainingDiverged`` (the trial ends as failed, never as a good score):
- a NaN or infinite loss in any step, or NaN/inf in generated images;
- mode collapse, by this rule: after an epoch the generator's images for the 16 fixed noise vectors are
  (near-)identical: the per-pixel standard deviation across them, averaged over pixels, is below 1e-3 on the
  [-1, 1] scale.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mritune.trainables.checkpointing import (
    epoch_dir,
    epoch_seed,
    finished_result,
    resume_point,
    rng_from_state,
    rng_to_state,
    set_learning_rate,
    stop_epoch,
    write_state,
)
from mritune.trainables.data.arrays import check_dataset, resized
from mritune.trainables.data.dataset import MRIDataset
from mritune.trainables.dcgan import DISCRIMINATOR_FILE, GENERATOR_FILE, TASK
from mritune.trainables.dcgan.config import LEGACY_RECIPE, DCGANConfig
from mritune.trainables.dcgan.images import EVAL_IMAGES, to_unit_range, write_png
from mritune.trainables.dcgan.metrics import mean_ms_ssim, sample_grid, sliced_wasserstein_distance
from mritune.trainables.errors import UserInputError
from mritune.trainables.reporting import EpochReport, Report, TrainingDiverged, TrainingResult

# What a checkpoint's models are (the loss too: the discriminator file is compiled with it); a state without the
# recipe's keys was written before they existed, with the legacy recipe's values.
ARCHITECTURE_KEYS = ("image_size", "latent_dim", "residual", "base_filters", "loss", "spectral_norm", "image_head")
GRID_SAMPLES = 16
COLLAPSE_STD = 1e-3

logger = logging.getLogger(__name__)


@dataclass
class _GAN:
    generator: Any
    discriminator: Any
    combined: Any


def train_dcgan(
    config: Mapping[str, Any],
    data: MRIDataset,
    report: Report,
    *,
    resume_from: str | None = None,
    workdir: str | None = None,
    evaluate_test: bool = True,
    until_epoch: int | None = None,
) -> TrainingResult:
    """Train the DCGAN described by ``config`` on all training images; resume after the epoch in ``resume_from``.

    Every epoch is reported (``report(EpochReport)``) with ``gen_loss``, ``disc_loss``, ``fd`` and ``swd`` with
    their floors, and ``ms_ssim_diversity``, against held-out validation images, and the folder of its checkpoint
    (``state.json``, ``generator.keras``, ``discriminator.keras``, a sample grid).

    Args:
        config: Hyperparameters, checked by ``DCGANConfig.from_dict`` (missing keys take their defaults).
        data: The dataset; labels are not used, the validation split (at least 2 images) is held out for SWD.
        report: Called once per epoch with an ``EpochReport``.
        resume_from: A checkpoint folder of an earlier epoch of the same architecture, or None.
        workdir: Where the epochs' checkpoint folders go; None: a new temporary folder.
        evaluate_test: After the last epoch, also report ``test_fd`` and ``test_swd`` against the test split
            (``mritune train``; skipped with a log line when the split has fewer than 2 images). A search passes
            False: it ranks trials on the validation ``fd`` and evaluates only the checkpoint it registers.
        until_epoch: Stop after this epoch (at most the config's ``epochs``, which stays the horizon of the
            cosine learning rates); None: after ``epochs``. A re-run to a trial's best epoch and a replayed
            schedule's stages pass it, so every epoch trains at the trial's rates (``checkpointing.stop_epoch``).

    Returns:
        The last epoch's metrics, generator path and artifacts.

    Raises:
        ValueError: A bad config key or value, a dataset that does not fit, fewer than 2 validation images, or a
            checkpoint of another architecture.
        TrainingDiverged: A non-finite loss, NaN/inf images, or mode collapse (the 16 fixed samples alike).

    Example:
        >>> from mritune.trainables.data.synthetic import load_synthetic
        >>> data = load_synthetic(n=320, size=32, seed=0)  # doctest: +SKIP
        >>> result = train_dcgan({"image_size": 32, "epochs": 2, "latent_dim": 16}, data,
        ...                      lambda epoch: print(epoch.metrics["swd"]))  # doctest: +SKIP
    """
    import keras

    cfg = DCGANConfig.from_dict(config)
    last_epoch = stop_epoch(cfg.epochs, until_epoch)
    check_dataset(data, need_test=False)
    if len(data.x_val) < 2:
        raise UserInputError("the DCGAN needs at least 2 validation images (held-out reals for SWD and MS-SSIM)")
    real = to_unit_range(resized(data.x_train, cfg.image_size))
    held_out = to_unit_range(resized(data.x_val[:EVAL_IMAGES], cfg.image_size))
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mritune-dcgan-"))
    start_epoch, state = resume_point(resume_from, task=TASK.name, config=cfg.to_dict(),
                                      architecture_keys=ARCHITECTURE_KEYS, saved_defaults=LEGACY_RECIPE)
    if state is not None and start_epoch >= last_epoch:
        return finished_result(resume_from, state, GENERATOR_FILE)
    keras.utils.set_random_seed(epoch_seed(cfg.seed, start_epoch))
    gan = _load_gan(cfg, resume_from) if state else _new_gan(cfg)
    rng = rng_from_state(state["rng"]) if state else np.random.default_rng(cfg.seed)
    _build_optimizers(gan)
    # The generator's predict batch is the training steps' batch: evaluation reuses their compiled function.
    evaluator = _Evaluator(cfg, gan, held_out, batch_size=min(cfg.batch_size, len(real)), data=data)
    result = None
    for epoch in range(start_epoch + 1, last_epoch + 1):
        started = time.perf_counter()
        _set_learning_rates(cfg, gan, epoch)
        losses = _train_epoch(cfg, gan, real, rng, epoch)
        metrics = {"epoch": epoch, **losses, "train_seconds": time.perf_counter() - started}
        grid_images = evaluator.fixed_samples()
        _check_collapse(grid_images, epoch)
        metrics.update(evaluator.metrics(epoch))
        if epoch == last_epoch and evaluate_test:
            metrics.update(_test_metrics(cfg, gan, data, folder))
        result = _save_and_report(cfg, gan, folder, epoch, metrics, rng, grid_images, report,
                                  last=epoch == last_epoch)
    return result


def _test_metrics(cfg: DCGANConfig, gan: _GAN, data: MRIDataset, folder: Path) -> dict[str, float]:
    from mritune.trainables.dcgan.evaluation import generator_test_evaluation

    if len(data.x_test) < 2:
        logger.info("no test metrics (test_swd, test_fd): the test split has %d images (2 needed)",
                    len(data.x_test))
        return {}
    evaluation = generator_test_evaluation(gan.generator, data, image_size=cfg.image_size,
                                           latent_dim=cfg.latent_dim, out_dir=folder / "test")
    return evaluation.metrics


def _new_gan(cfg: DCGANConfig) -> _GAN:
    from mritune.trainables.dcgan.model import build_discriminator, build_generator, compile_gan

    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    return _GAN(generator, discriminator, compile_gan(cfg, generator, discriminator))


def _build_optimizers(gan: _GAN) -> None:
    """Both optimizers built for exactly the variables their steps update (one trace per train step, not two)."""
    from mritune.trainables.compiled_steps import build_optimizer

    build_optimizer(gan.discriminator)
    gan.discriminator.trainable = False  # as in the generator step: the combined model updates the generator only
    build_optimizer(gan.combined)
    gan.discriminator.trainable = True


def _load_gan(cfg: DCGANConfig, folder: str) -> _GAN:
    import keras

    import mritune.trainables.layers  # noqa: F401  (registers the custom layers before any load)
    from mritune.trainables.dcgan.model import compile_gan

    generator = keras.saving.load_model(Path(folder) / GENERATOR_FILE, safe_mode=True)
    discriminator = keras.saving.load_model(Path(folder) / DISCRIMINATOR_FILE, safe_mode=True)
    combined = compile_gan(cfg, generator, discriminator, generator_optimizer=generator.optimizer)
    return _GAN(generator, discriminator, combined)


def _set_learning_rates(cfg: DCGANConfig, gan: _GAN, epoch: int) -> None:
    """The epoch's rates from the config (its schedule), on both optimizers: also what gives a loaded checkpoint's
    optimizers, which keep the rates they were saved with, a resumed or perturbed config's rates."""
    lr_g, lr_d = cfg.learning_rates(epoch)
    set_learning_rate(gan.combined.optimizer, lr_g)  # the generator's: the combined model trains the generator
    set_learning_rate(gan.discriminator.optimizer, lr_d)


def _scalar(value: Any) -> float:
    return float(np.asarray(value, dtype=np.float64).reshape(-1)[0])


def _train_epoch(cfg: DCGANConfig, gan: _GAN, real: np.ndarray, rng: np.random.Generator, epoch: int) -> dict:
    batch = min(cfg.batch_size, len(real))
    order = rng.permutation(len(real))
    real_target = np.full((batch, 1), 1.0 - cfg.label_smoothing, dtype=np.float32)  # one-sided smoothing
    fake_target = np.full((batch, 1), -1.0 if cfg.loss == "hinge" else 0.0, dtype=np.float32)
    d_target = np.concatenate([real_target, fake_target])
    g_target = np.ones((batch, 1), np.float32)
    d_losses, g_losses = [], []
    steps = max(1, len(real) // batch)
    for step in range(steps):
        images = real[order[step * batch : (step + 1) * batch]]
        if cfg.flip:
            images = _mirrored(images, rng)
        fake = gan.generator.predict_on_batch(_noise(rng, batch, cfg.latent_dim))
        gan.discriminator.trainable = True
        d_losses.append(_checked(gan.discriminator.train_on_batch(np.concatenate([images, fake]), d_target),
                                 "discriminator", epoch, step))
        if (step + 1) % cfg.d_steps == 0 or (step == steps - 1 and not g_losses):  # >= 1 G step per epoch
            gan.discriminator.trainable = False
            g_losses.append(_checked(gan.combined.train_on_batch(_noise(rng, batch, cfg.latent_dim), g_target),
                                     "generator", epoch, step))
    gan.discriminator.trainable = True
    return {"disc_loss": float(np.mean(d_losses)), "gen_loss": float(np.mean(g_losses))}


def _mirrored(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image mirrored left-right with probability 1/2 (axial slices are near-symmetric: twice the data)."""
    flip = rng.random(len(images)) < 0.5
    return np.where(flip[:, None, None, None], images[:, :, ::-1, :], images)


def _noise(rng: np.random.Generator, count: int, latent_dim: int) -> np.ndarray:
    return rng.standard_normal((count, latent_dim)).astype(np.float32)


def _checked(loss: Any, which: str, epoch: int, step: int) -> float:
    value = _scalar(loss)
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"DCGAN diverged at epoch {epoch}, step {step + 1}: the {which} loss is {value}; lower lr_g/lr_d"
        )
    return value


def _check_collapse(images: np.ndarray, epoch: int) -> None:
    if not np.isfinite(images).all():
        raise TrainingDiverged(f"DCGAN diverged at epoch {epoch}: generated images hold NaN/inf")
    spread = float(images.std(axis=0).mean())
    if spread < COLLAPSE_STD:
        raise TrainingDiverged(
            f"DCGAN mode collapse at epoch {epoch}: the {len(images)} fixed-noise samples are identical "
            f"(pixel std {spread:.2e} < {COLLAPSE_STD}); try a lower lr_g or more dropout"
        )


class _Evaluator:
    """Epoch-end measurements on held-out real images and generated ones; fixed noise for the sample grid.

    Realism against its floor (``realism.py``): ``swd`` and ``fd`` of generated against held-out (validation)
    images, ``swd_floor`` and ``fd_floor`` of as many training images against the same held-out ones. The feature
    network is loaded (or trained once per dataset and cached) and the floors computed when the training starts.
    """

    def __init__(self, cfg: DCGANConfig, gan: _GAN, held_out: np.ndarray, *, batch_size: int, data: MRIDataset):
        from mritune.trainables.compiled_steps import BatchPredictor
        from mritune.trainables.dcgan.realism import realism_reference

        self.cfg, self.gan, self.held_out = cfg, gan, held_out
        self._generator = BatchPredictor(model=gan.generator, batch_size=batch_size)
        self._discriminator = BatchPredictor(model=gan.discriminator, batch_size=64)
        self.fixed_noise = _noise(np.random.default_rng([cfg.seed, 1]), GRID_SAMPLES, cfg.latent_dim)
        self.ms_ssim_real = mean_ms_ssim(held_out, seed=cfg.seed)
        self.realism = realism_reference(data, cfg.image_size, held_out)

    def fixed_samples(self) -> np.ndarray:
        return self._generate(self.fixed_noise)

    def _generate(self, noise: np.ndarray) -> np.ndarray:
        return np.asarray(self._generator(noise), dtype=np.float32)

    def metrics(self, epoch: int) -> dict[str, float]:
        # Fresh noise per epoch from (seed, epoch): the measurement does not disturb the training's RNG stream.
        noise = _noise(np.random.default_rng([self.cfg.seed, 2, epoch]), len(self.held_out), self.cfg.latent_dim)
        fake = self._generate(noise)
        if not np.isfinite(fake).all():
            raise TrainingDiverged(f"DCGAN diverged at epoch {epoch}: generated images hold NaN/inf")
        logits = self._discriminator(np.concatenate([self.held_out, fake]))  # one pass over both
        real_logits, fake_logits = logits[: len(self.held_out)], logits[len(self.held_out) :]
        return {
            "d_real_acc": float((real_logits > 0).mean()),
            "d_fake_acc": float((fake_logits < 0).mean()),
            "swd": sliced_wasserstein_distance(fake, self.held_out, seed=self.cfg.seed + epoch),
            "swd_floor": self.realism.floors.swd,
            "fd": self.realism.frechet_distance(fake),
            "fd_floor": self.realism.floors.fd,
            "ms_ssim_diversity": mean_ms_ssim(fake, seed=self.cfg.seed + epoch),
            "ms_ssim_real": self.ms_ssim_real,
        }


def _save_and_report(cfg, gan: _GAN, workdir: Path, epoch: int, metrics: dict, rng, grid_images, report: Report, *,
                     last: bool):
    folder = epoch_dir(workdir, epoch)
    gan.generator.save(folder / GENERATOR_FILE)
    gan.discriminator.save(folder / DISCRIMINATOR_FILE)
    grid = sample_grid(grid_images)
    artifacts: dict[str, str] = {}
    if last:  # the training's last epoch (its stop, which a re-run may set before the config's epochs)
        artifacts["samples"] = str(write_png(grid, folder / "artifacts" / "samples.png"))
    state = {
        "task": TASK.name,
        "epoch": epoch,
        "config": cfg.to_dict(),
        "image_size": cfg.image_size,
        "latent_dim": cfg.latent_dim,
        "rng": rng_to_state(rng),
        "metrics": metrics,
        "artifacts": {name: str(Path(path).relative_to(folder)) for name, path in artifacts.items()},
    }
    write_state(folder, state)
    report(EpochReport(epoch=epoch, metrics=metrics, checkpoint_dir=str(folder), images={"samples": grid},
                       artifacts=artifacts))
    return TrainingResult(metrics=metrics, model_path=str(folder / GENERATOR_FILE), artifacts=artifacts,
                          epochs_completed=epoch)
