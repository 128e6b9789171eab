"""MobileNetV2 (alpha 0.35): a build and a training step, and the weights option (none, local file, imagenet)."""

from __future__ import annotations

import numpy as np
import pytest

from mritune.trainables.classifier.config import ClassifierConfig
from tests.trainables.training_helpers import few_tf_threads

CONFIG = {"backbone": "mobilenetv2", "alpha": 0.35, "image_size": 32, "dense_units": 16, "batch_size": 8}


@pytest.fixture(scope="module", autouse=True)
def _threads():
    few_tf_threads()


def test_mobilenetv2_builds_scales_input_and_takes_a_training_step(tiny_dataset):
    import keras

    from mritune.trainables.classifier.model import build_classifier

    model = build_classifier(ClassifierConfig.from_dict(CONFIG), num_classes=4)
    assert model.get_layer("to_minus1_1").get_config()["offset"] == -1.0
    x = tiny_dataset.x_train[:8].astype("float32")[..., None]
    y = keras.utils.to_categorical(tiny_dataset.y_train[:8], 4)
    # One eager step: tracing MobileNetV2's training graph costs ~a minute of CPU, the step itself ~a second.
    model.run_eagerly = True
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(np.asarray(loss)).all()
    after = [w.numpy() for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_missing_local_weights_file_is_a_clear_error(tmp_path):
    from mritune.trainables.classifier.model import build_classifier

    config = ClassifierConfig.from_dict({**CONFIG, "weights": str(tmp_path / "absent.h5")})
    with pytest.raises(FileNotFoundError, match="weights file"):
        build_classifier(config, num_classes=4)


def test_imagenet_offline_is_a_one_line_error_suggesting_alternatives(monkeypatch, tmp_path):
    from mritune.trainables.classifier.model import build_classifier

    # An empty Keras home: no cached weights, so Keras must download (and there is no internet here).
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    config = ClassifierConfig.from_dict({**CONFIG, "weights": "imagenet", "image_size": 96})
    try:
        build_classifier(config, num_classes=4)
    except ConnectionError as exc:
        message = str(exc)
        assert "\n" not in message and "none" in message and "local weights file" in message
    else:
        pytest.skip("ImageNet weights were downloadable from this machine")


def backbone_of(model):
    return next(layer for layer in model.layers if layer.name.startswith("mobilenetv2"))


def test_local_weights_file_is_loaded_into_the_backbone(tmp_path):
    import keras

    from mritune.trainables.classifier.model import build_classifier

    keras.utils.set_random_seed(0)
    source = build_classifier(ClassifierConfig.from_dict(CONFIG), num_classes=4)
    path = tmp_path / "mobilenet_backbone.weights.h5"
    backbone_of(source).save_weights(path)
    keras.utils.set_random_seed(1)
    loaded = build_classifier(ClassifierConfig.from_dict({**CONFIG, "weights": str(path)}), num_classes=4)
    keras.utils.set_random_seed(1)
    fresh = build_classifier(ClassifierConfig.from_dict(CONFIG), num_classes=4)
    expected = [w.numpy() for w in backbone_of(source).weights]
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(expected, backbone_of(loaded).weights))
    assert not all(np.array_equal(a, b.numpy()) for a, b in zip(expected, backbone_of(fresh).weights))
