"""The DCGAN's hyperparameters: a frozen dataclass built from a trial's flat config dict.

The architecture follows the original (latent 100, the 8×8 stem doubling to the image size, LeakyReLU, dropout in
the discriminator; ``base_filters: 64`` at ``image_size: 128`` gives its 8×8×512 stem), at 64 px, 5 epochs and
``base_filters`` 32 so a quick search on 2 CPUs is fast. The training recipe is the one that learns brain slices
on a CPU budget (issue 24, ``benchmarks/dcgan_search.py recipes``):

- ``loss: hinge`` with ``spectral_norm`` on every discriminator layer (Miyato et al. 2018): the discriminator's
  gradients stay bounded, so the generator keeps learning where the original's BCE discriminator saturated;
- ``image_head: bilinear``: the last doubling is a bilinear upsampling and a 3×3 convolution, not a strided
  transposed convolution, whose uneven overlap drew the checkerboard the original's early samples show;
- two time-scale learning rates (``lr_d`` twice ``lr_g``, Heusel et al. 2017) with ``lr_schedule: cosine`` (each
  epoch's rate follows a half cosine from the config's rate down over ``epochs``, the training's planned length
  even where a re-run stops earlier: ``train_dcgan(until_epoch=...)``), batch 8 (more updates per epoch: what a
  few CPU epochs need most) and ``flip``: each real image mirrored left-right with probability 1/2.

``LEGACY_RECIPE`` holds the settings that select the original's recipe (BCE, no spectral norm, a transposed
image head, constant Adam 2e-4 for both, batch 32, label smoothing 0.1); checkpoints written before the recipe
existed resume only with it. ``label_smoothing`` is one-sided (real targets become 1 - label_smoothing) and exists
only for ``loss: bce``. ``d_steps`` is the number of discriminator updates per generator update.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from mritune.trainables.config_validation import as_bool, as_choice, as_float, as_int, check_known_keys
from mritune.trainables.errors import UserInputError

IMAGE_SIZES = (32, 64, 128, 256)  # powers of two: the generator doubles from 8×8
LOSSES = ("hinge", "bce")
IMAGE_HEADS = ("bilinear", "transpose")
LR_SCHEDULES = ("cosine", "constant")

# The recipe before issue 24 (the original's): what `benchmarks/dcgan_search.py recipes` measures the new one
# against, and what a checkpoint without these keys in its state was trained with.
LEGACY_RECIPE: dict[str, Any] = {
    "loss": "bce", "spectral_norm": False, "image_head": "transpose", "lr_schedule": "constant", "flip": False,
    "lr_g": 2e-4, "lr_d": 2e-4, "batch_size": 32, "label_smoothing": 0.1,
}


@dataclass(frozen=True, kw_only=True)
class DCGANConfig:
    image_size: int = 64
    latent_dim: int = 100
    lr_g: float = 4e-4
    lr_d: float = 8e-4
    beta_1: float = 0.5
    batch_size: int = 8
    dropout: float = 0.3
    label_smoothing: float = 0.0
    loss: str = "hinge"
    spectral_norm: bool = True
    image_head: str = "bilinear"
    lr_schedule: str = "cosine"
    flip: bool = True
    residual: bool = False
    base_filters: int = 32
    d_steps: int = 1
    epochs: int = 5
    seed: int = 0

    @classmethod
    def from_dict(cls, config: Mapping[str, Any] | None) -> "DCGANConfig":
        """Validate a flat config (unknown keys and bad values raise ValueError naming the key); fill defaults."""
        values = dict(config or {})
        check_known_keys(values, cls, "dcgan")
        merged = {**asdict(cls()), **values}
        loss = as_choice("loss", merged["loss"], LOSSES)
        label_smoothing = as_float("label_smoothing", merged["label_smoothing"], low=0.0, high=0.5)
        if label_smoothing and loss != "bce":
            raise UserInputError(f"label_smoothing applies only to loss: bce (the {loss} loss has no targets to "
                                 f"smooth), got label_smoothing={label_smoothing}")
        return cls(
            image_size=_image_size(merged["image_size"]),
            latent_dim=as_int("latent_dim", merged["latent_dim"], low=2, high=1024),
            lr_g=as_float("lr_g", merged["lr_g"], low=0.0, high=1.0, low_open=True),
            lr_d=as_float("lr_d", merged["lr_d"], low=0.0, high=1.0, low_open=True),
            beta_1=as_float("beta_1", merged["beta_1"], low=0.0, high=1.0, high_open=True),
            batch_size=as_int("batch_size", merged["batch_size"], low=2, high=4096),
            dropout=as_float("dropout", merged["dropout"], low=0.0, high=1.0, high_open=True),
            label_smoothing=label_smoothing,
            loss=loss,
            spectral_norm=as_bool("spectral_norm", merged["spectral_norm"]),
            image_head=as_choice("image_head", merged["image_head"], IMAGE_HEADS),
            lr_schedule=as_choice("lr_schedule", merged["lr_schedule"], LR_SCHEDULES),
            flip=as_bool("flip", merged["flip"]),
            residual=as_bool("residual", merged["residual"]),
            base_filters=as_int("base_filters", merged["base_filters"], low=2, high=512),
            d_steps=as_int("d_steps", merged["d_steps"], low=1, high=20),
            epochs=as_int("epochs", merged["epochs"], low=1, high=10_000),
            seed=as_int("seed", merged["seed"], low=0, high=2**31 - 1),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def learning_rates(self, epoch: int) -> tuple[float, float]:
        """(generator, discriminator) learning rate for ``epoch`` (1-based): the config's rates, or with
        ``lr_schedule: cosine`` a half cosine from them at epoch 1 towards zero after ``epochs`` (the last epoch
        still trains at a small rate). A resumed or perturbed training reads its rates from here too."""
        if self.lr_schedule == "constant":
            return self.lr_g, self.lr_d
        factor = 0.5 * (1.0 + math.cos(math.pi * (min(epoch, self.epochs) - 1) / self.epochs))
        return self.lr_g * factor, self.lr_d * factor


def _image_size(value: Any) -> int:
    size = as_int("image_size", value, low=IMAGE_SIZES[0], high=IMAGE_SIZES[-1])
    if size not in IMAGE_SIZES:
        raise UserInputError(f"image_size must be one of {', '.join(map(str, IMAGE_SIZES))}, got {size}")
    return size
