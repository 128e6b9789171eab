"""ClassifierConfig / DCGANConfig validation: defaults, coercion of searcher floats, one-line errors naming the key."""

from __future__ import annotations

import pytest

from mritune.trainables.classifier.config import ClassifierConfig
from mritune.trainables.dcgan.config import DCGANConfig


def test_defaults_are_the_documented_quick_search_settings():
    cfg = ClassifierConfig.from_dict({})
    assert (cfg.backbone, cfg.alpha, cfg.weights, cfg.image_size, cfg.epochs) == ("mobilenetv2", 0.35, "none", 64, 6)
    gan = DCGANConfig.from_dict(None)
    assert (gan.image_size, gan.epochs, gan.latent_dim) == (64, 5, 100)


def test_searcher_floats_and_yaml_values_are_coerced():
    cfg = ClassifierConfig.from_dict({"batch_size": 16.0, "alpha": 0.5000000001, "optimizer": "SGD", "dense_units": 64})
    assert cfg.batch_size == 16 and isinstance(cfg.batch_size, int)
    assert cfg.alpha == 0.5 and cfg.optimizer == "sgd"
    gan = DCGANConfig.from_dict({"residual": 1.0, "d_steps": 2.0, "image_size": 32})
    assert gan.residual is True and gan.d_steps == 2 and gan.image_size == 32


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"learning_rat": 0.1}, "learning_rat"),
        ({"batch_size": 16.5}, "batch_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"alpha": 0.4}, "alpha"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"class_weighting": "inverse"}, "class_weighting"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"image_size": 16}, "image_size"),
        ({"epochs": True}, "epochs"),
        ({"weights": ""}, "weights"),
    ],
)
def test_bad_classifier_values_name_the_key(config, key):
    with pytest.raises(ValueError, match=key) as info:
        ClassifierConfig.from_dict(config)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("config", "key"),
    [({"image_size": 48}, "image_size"), ({"residual": "maybe"}, "residual"), ({"lr_g": 0}, "lr_g"),
     ({"d_steps": 0}, "d_steps"), ({"latent": 10}, "latent")],
)
def test_bad_dcgan_values_name_the_key(config, key):
    with pytest.raises(ValueError, match=key):
        DCGANConfig.from_dict(config)


def test_bad_value_error_lists_the_allowed_values():
    with pytest.raises(ValueError, match="adam, adamw, sgd"):
        ClassifierConfig.from_dict({"optimizer": "rmsprop"})
