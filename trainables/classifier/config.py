"""The classifier's hyperparameters: a frozen dataclass built from a trial's flat config dict.

Defaults are chosen so a quick search on 2 CPUs is fast: MobileNetV2 alpha 0.35 from scratch (``weights: none``,
so the whole backbone trains: ``fine_tune_fraction`` 1.0) at 64 px for 6 epochs, Adam 1e-3, batch 32,
balanced class weights (the data is imbalanced 50:35:14:1).

The backbones and the settings each reads are registered in ``backbones.py``: ``alpha`` (MobileNetV2's width)
only shapes ``mobilenetv2``; ``weights`` and ``fine_tune_fraction`` shape every Keras application; ``small_cnn``
(three conv blocks trained from scratch) reads none of them. ``check_search_space`` refuses a search over a
setting the backbone(s) ignore.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from mritune.trainables.classifier.backbones import BACKBONE_NAMES, get_backbone, unused_searched_settings
from mritune.trainables.config_validation import as_choice, as_float, as_int, check_known_keys
from mritune.trainables.errors import UserInputError

BACKBONES = BACKBONE_NAMES  # the registry in backbones.py
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
            image_size=as_int("image_size", merged["image_size"], low=1, high=512),
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
        )._check_image_size()

    def _check_image_size(self) -> "ClassifierConfig":
        smallest = get_backbone(self.backbone).min_image_size
        if self.image_size < smallest:
            raise UserInputError(f"image_size {self.image_size} is below {self.backbone}'s minimum of {smallest} px")
        return self

    @classmethod
    def check_search_space(cls, fixed: Mapping[str, Any], space: Mapping[str, Any]) -> None:
        """Refuse searching a backbone setting that the backbone (fixed, or every option of a searched choice)
        ignores: ``alpha`` searched with ``backbone: densenet169`` spends a dimension on nothing.

        ``space`` maps keys to Ray Tune domains (a choice has ``categories``) or constants; raises ValueError.
        """
        domain = space.get("backbone", fixed.get("backbone", cls.backbone))
        options = getattr(domain, "categories", [domain])
        backbones = tuple(as_choice("backbone", option, BACKBONES) for option in options)
        unused = unused_searched_settings(backbones, set(space))
        if unused:
            which = (f"backbone {backbones[0]} does not use it" if len(backbones) == 1
                     else f"none of the backbones {', '.join(backbones)} uses it")
            raise UserInputError(f"{unused[0]} is searched but {which}: remove it from search.space")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _weights(key: str, value: Any) -> str:
    if value is None:
        return "none"
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"{key} must be none, imagenet or a path to a local weights file, got {value!r}")
    text = value.strip()
    return text.lower() if text.lower() in ("none", "imagenet") else text
