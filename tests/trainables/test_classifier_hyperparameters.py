"""Every classifier hyperparameter is real: changing it changes the built model or its training.

(The original notebook sampled dense units, dropout and l2 and never used them.) Architecture and compile
settings are compared through the built model's own serialised config; settings that only act during training
(batch size, class weighting, seed, epochs) are tested through real trainings in test_classifier_training.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from mritune.trainables.classifier.config import ClassifierConfig
from tests.trainables.training_helpers import TINY_CLASSIFIER, few_tf_threads

MOBILENET = {**TINY_CLASSIFIER, "backbone": "mobilenetv2", "alpha": 0.35, "fine_tune_fraction": 1.0}

BUILT_CHANGES = [
    ("dropout", 0.5, TINY_CLASSIFIER),
    ("dense_units", 32, TINY_CLASSIFIER),
    ("l2", 0.01, TINY_CLASSIFIER),
    ("augmentation", 0.5, TINY_CLASSIFIER),
    ("image_size", 48, TINY_CLASSIFIER),
    ("optimizer", "sgd", TINY_CLASSIFIER),
    ("optimizer", "adamw", TINY_CLASSIFIER),
    ("learning_rate", 0.01, TINY_CLASSIFIER),
    ("label_smoothing", 0.1, TINY_CLASSIFIER),
    ("backbone", "mobilenetv2", TINY_CLASSIFIER),
    ("alpha", 0.5, MOBILENET),
    ("fine_tune_fraction", 0.3, MOBILENET),
]


@pytest.fixture(scope="module", autouse=True)
def _threads():
    few_tf_threads()


def model_signature(config: dict) -> tuple:
    return _signature(json.dumps(config, sort_keys=True))


@functools.lru_cache(maxsize=None)  # the two base configs are built once, not once per parameter
def _signature(config_json: str) -> tuple:
    """What a built model is: its architecture, compile settings, and how many weights train."""
    from mritune.trainables.classifier.model import build_classifier

    model = build_classifier(ClassifierConfig.from_dict(json.loads(config_json)), num_classes=4)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return (
        json.dumps(model.get_config(), sort_keys=True, default=str),
        json.dumps(model.optimizer.get_config(), sort_keys=True, default=str),
        json.dumps(model.loss.get_config(), sort_keys=True, default=str),
        trainable,
    )


@pytest.mark.parametrize(("key", "value", "base"), BUILT_CHANGES, ids=[f"{k}={v}" for k, v, _ in BUILT_CHANGES])
def test_hyperparameter_changes_the_built_model(key, value, base):
    assert base.get(key) != value
    before, after = model_signature(base), model_signature({**base, key: value})
    assert before != after


def test_fine_tune_fraction_freezes_the_lower_backbone_layers():
    from mritune.trainables.classifier.model import build_classifier

    model = build_classifier(ClassifierConfig.from_dict({**MOBILENET, "fine_tune_fraction": 0.25}), num_classes=4)
    backbone = model.get_layer(next(layer.name for layer in model.layers if "mobilenet" in layer.name))
    flags = [layer.trainable for layer in backbone.layers]
    assert not any(flags[: len(flags) // 2]) and all(flags[-len(flags) // 5 :])


def test_balanced_class_weights_favour_the_rare_classes():
    from mritune.trainables.classifier.training import class_weights

    labels = np.array([0] * 50 + [1] * 35 + [2] * 14 + [3] * 1)
    weights = class_weights(ClassifierConfig.from_dict({}), labels, 4)
    assert weights[3] > weights[2] > weights[1] > weights[0]
    assert class_weights(ClassifierConfig.from_dict({"class_weighting": "none"}), labels, 4) is None
