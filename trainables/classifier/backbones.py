"""The classifier's backbones: one registry of name → how to build it, which settings it reads, its minimum size.

Every consumer reads this table: the config (allowed names, per-backbone minimum image size), the spec check
that refuses searching a setting the fixed backbone ignores (``unused_searched_settings``), the model builder
and the list in docs/specs.md. Adding a Keras application is one ``Backbone(...)`` entry below.

Every backbone takes the same input: float32 raw pixels (0-255), one channel. Keras applications expect three
channels, so the grayscale channel is repeated (``GrayscaleToRGB``) after scaling to the range the application
was trained in (``input_scaling``), which matters for ``weights: imagenet`` or a local pretrained file.
``fine_tune_fraction`` means the same for all of them: the share of the backbone's layers, counted from the top,
that train; ``weights: none`` trains from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

from mritune.trainables.errors import UserInputError

# Settings only some backbones read. A setting not listed here (learning_rate, dense_units, dropout, l2, ...)
# shapes the head or the training and applies to every backbone.
BACKBONE_SETTINGS = ("alpha", "weights", "fine_tune_fraction")
_APPLICATION_SETTINGS = frozenset({"weights", "fine_tune_fraction"})

# Input scalings (raw 0..255 gray → what the application expects), by the name Keras' preprocess_input uses.
SCALING_TF = "tf"  # [-1, 1]: MobileNetV2
SCALING_TORCH = "torch"  # [0, 1] then ImageNet mean/std per channel: DenseNet
SCALING_CAFFE = "caffe"  # BGR ImageNet means subtracted, no scaling: ResNet50
SCALING_RAW = "raw"  # 0..255 as is: EfficientNet rescales and normalises inside its own model
SCALING_UNIT = "unit"  # [0, 1]: the small CNN


@dataclass(frozen=True, kw_only=True)
class Backbone:
    """One backbone choice.

    Args:
        name: The spec's ``backbone`` value.
        application: The ``keras.applications`` constructor's name, or None for a backbone built here.
        input_scaling: One of the ``SCALING_*`` names: how raw pixels are scaled before the backbone.
        settings: The backbone-specific settings it reads (a subset of ``BACKBONE_SETTINGS``).
        min_image_size: The smallest ``image_size`` it builds at (Keras applications refuse below 32 px).

    Example:
        >>> Backbone(name="densenet121", application="DenseNet121", input_scaling=SCALING_TORCH,
        ...          settings=frozenset({"weights", "fine_tune_fraction"}))  # doctest: +ELLIPSIS
        Backbone(name='densenet121', ...)
    """

    name: str
    application: str | None
    input_scaling: str
    settings: frozenset[str]
    min_image_size: int = 32


_REGISTRY: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone(name="mobilenetv2", application="MobileNetV2", input_scaling=SCALING_TF,
                 settings=_APPLICATION_SETTINGS | {"alpha"}),
        Backbone(name="densenet121", application="DenseNet121", input_scaling=SCALING_TORCH,
                 settings=_APPLICATION_SETTINGS),
        Backbone(name="densenet169", application="DenseNet169", input_scaling=SCALING_TORCH,
                 settings=_APPLICATION_SETTINGS),
        Backbone(name="resnet50", application="ResNet50", input_scaling=SCALING_CAFFE,
                 settings=_APPLICATION_SETTINGS),
        Backbone(name="efficientnetb0", application="EfficientNetB0", input_scaling=SCALING_RAW,
                 settings=_APPLICATION_SETTINGS),
        Backbone(name="small_cnn", application=None, input_scaling=SCALING_UNIT, settings=frozenset()),
    )
}

BACKBONE_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get_backbone(name: str) -> Backbone:
    """The registered backbone ``name``; ValueError (one line, listing the choices) for an unknown one."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserInputError(f"backbone must be one of {', '.join(BACKBONE_NAMES)}, got {name!r}") from None


def unused_searched_settings(backbones: tuple[str, ...], searched: set[str] | frozenset[str]) -> list[str]:
    """Searched backbone settings that none of ``backbones`` (the fixed one, or a choice's options) reads.

    Such a setting would spend a search dimension on nothing: ``alpha`` searched with ``backbone: densenet169``.
    """
    read = set().union(*(get_backbone(name).settings for name in backbones))
    return sorted(key for key in searched if key in BACKBONE_SETTINGS and key not in read)
