"""The classifier's hyperparameters: a frozen dataclass built from a trial's flat config dict.

Defaults are chosen so a quick search on 2 CPUs is fast: MobileNetV2 alpha 0.35 from scratch (``weights: none``,
so the whole backbone trains: ``fine_tune_fraction`` 1.0) at 64 px for 6 epochs, Adam 1e-3, batch 32,
balanced class weights (the data is imbalanced 50:35:14:1).

``alpha``, ``weights`` and ``fine_tune_fraction`` only shape the ``mobilenetv2`` backbone; ``small_cnn`` (three
conv blocks trained from scratch) ignores them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from mritune.trainables.config_validation import as_choice, as_float, as_int, check_known_keys
from mritune.trainables.errors import UserInputError

BACKBONES = ("mobilenetv2", "small_cnn")
ALPHAS = (0.35, 0.5, 0.75, 1.0)
OPTIMIZERS = ("adam", "adamw", "sgd")
CLASS_WEIGHTINGS = ("none", "balanced")


@dataclass(frozen=True, kw_only=True)
class ClassifierConfig:
    backbone: str = "mobilenetv2"
    alpha: float = 0.35
    weights: str = "none"  # "none" | "imagenet" | path to a local weights file
    image_size: int = 64
    learning_rate: float = 1e-3
    batch_size: int = 32
    dropout: float = 0.2
    dense_units: int = 128
    l2: float = 1e-4
    fine_tune_fraction: float = 1.0  # share of backbone layers (from the top) that train
    optimizer: str = "adam"
    class_weighting: str = "balanced"
    label_smoothing: float = 0.0
    augmentation: float = 0.0  # 0 = off; 1 = flips, rotations up to ±36°, zoom up to ±20%
    epochs: int = 6
    seed: int = 0

    @classmethod
    def from_dict(cls, config: Mapping[str, Any] | None) -> "ClassifierConfig":
        """Validate a flat config (unknown keys and bad values raise ValueError naming the key); fill defaults."""
        values = dict(config or {})
        check_known_keys(values, cls, "classifier")
        merged = {**asdict(cls()), **values}
        return cls(
            backbone=as_choice("backbone", merged["backbone"], BACKBONES),
            alpha=as_choice("alpha", merged["alpha"], ALPHAS),
            weights=_weights("weights", merged["weights"]),
            image_size=as_int("image_size", merged["image_size"], low=32, high=512),
            learning_rate=as_float("learning_rate", merged["learning_rate"], low=0.0, high=1.0, low_open=True),
            batch_size=as_int("batch_size", merged["batch_size"], low=1, high=4096),
            dropout=as_float("dropout", merged["dropout"], low=0.0, high=1.0, high_open=True),
            dense_units=as_int("dense_units", merged["dense_units"], low=1, high=8192),
            l2=as_float("l2", merged["l2"], low=0.0, high=1.0),
            fine_tune_fraction=as_float("fine_tune_fraction", merged["fine_tune_fraction"], low=0.0, high=1.0),
            optimizer=as_choice("optimizer", merged["optimizer"], OPTIMIZERS),
            class_weighting=as_choice("class_weighting", merged["class_weighting"], CLASS_WEIGHTINGS),
            label_smoothing=as_float("label_smoothing", merged["label_smoothing"], low=0.0, high=1.0, high_open=True),
            augmentation=as_float("augmentation", merged["augmentation"], low=0.0, high=1.0),
            epochs=as_int("epochs", merged["epochs"], low=1, high=10_000),
            seed=as_int("seed", merged["seed"], low=0, high=2**31 - 1),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _weights(key: str, value: Any) -> str:
    if value is None:
        return "none"
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"{key} must be none, imagenet or a path to a local weights file, got {value!r}")
    text = value.strip()
    return text.lower() if text.lower() in ("none", "imagenet") else text
