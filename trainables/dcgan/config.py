"""The DCGAN's hyperparameters: a frozen dataclass built from a trial's flat config dict.

Defaults follow the original (latent 100, Adam 2e-4 with beta_1 0.5, LeakyReLU, dropout in the discriminator)
but at 64 px, 5 epochs and ``base_filters`` 32 so a quick search on 2 CPUs is fast; ``base_filters: 64`` at
``image_size: 128`` gives the original's 8×8×512 generator stem and 128×128 output. ``label_smoothing`` is
one-sided (real targets become 1 - label_smoothing). ``d_steps`` is the number of discriminator updates per
generator update.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from mritune.trainables.config_validation import as_bool, as_float, as_int, check_known_keys
from mritune.trainables.errors import UserInputError

IMAGE_SIZES = (32, 64, 128, 256)  # powers of two: the generator doubles from 8×8


@dataclass(frozen=True, kw_only=True)
class DCGANConfig:
    image_size: int = 64
    latent_dim: int = 100
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta_1: float = 0.5
    batch_size: int = 32
    dropout: float = 0.3
    label_smoothing: float = 0.1
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
        return cls(
            image_size=_image_size(merged["image_size"]),
            latent_dim=as_int("latent_dim", merged["latent_dim"], low=2, high=1024),
            lr_g=as_float("lr_g", merged["lr_g"], low=0.0, high=1.0, low_open=True),
            lr_d=as_float("lr_d", merged["lr_d"], low=0.0, high=1.0, low_open=True),
            beta_1=as_float("beta_1", merged["beta_1"], low=0.0, high=1.0, high_open=True),
            batch_size=as_int("batch_size", merged["batch_size"], low=2, high=4096),
            dropout=as_float("dropout", merged["dropout"], low=0.0, high=1.0, high_open=True),
            label_smoothing=as_float("label_smoothing", merged["label_smoothing"], low=0.0, high=0.5),
            residual=as_bool("residual", merged["residual"]),
            base_filters=as_int("base_filters", merged["base_filters"], low=2, high=512),
            d_steps=as_int("d_steps", merged["d_steps"], low=1, high=20),
            epochs=as_int("epochs", merged["epochs"], low=1, high=10_000),
            seed=as_int("seed", merged["seed"], low=0, high=2**31 - 1),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _image_size(value: Any) -> int:
    size = as_int("image_size", value, low=IMAGE_SIZES[0], high=IMAGE_SIZES[-1])
    if size not in IMAGE_SIZES:
        raise UserInputError(f"image_size must be one of {', '.join(map(str, IMAGE_SIZES))}, got {size}")
    return size
