"""Every registered backbone builds at 32 px, trains one epoch on tiny data, scores finite metrics and reloads.

The fast test trains eagerly (``run_eagerly``): tracing a Keras application's training graph costs 15-40 s of
CPU each (DenseNet169 the most), the eager epoch 1-3 s. The slow test runs the real ``train_classifier`` path
(graph mode, checkpoint, metrics) for each application.
"""

from __future__ import annotations

import numpy as np
import pytest

from mritune.trainables.classifier.backbones import BACKBONE_NAMES, get_backbone
from mritune.trainables.classifier.config import ClassifierConfig
from tests.trainables.training_helpers import assert_finite_metrics, few_tf_threads

TINY = {"image_size": 32, "batch_size": 8, "dense_units": 8}
KERAS_APPLICATIONS = [name for name in BACKBONE_NAMES if get_backbone(name).application is not None]


@pytest.fixture(scope="module", autouse=True)
def _threads():
    few_tf_threads()


@pytest.mark.parametrize("backbone", BACKBONE_NAMES)
def test_backbone_trains_one_epoch_scores_finite_metrics_and_reloads_safely(backbone, tiny_dataset, tmp_path):
    import keras

    import mritune.trainables.layers  # noqa: F401  (the custom layers, as deploy imports them)
    from mritune.trainables.classifier.metrics import classification_metrics
    from mritune.trainables.classifier.model import build_classifier

    keras.utils.set_random_seed(0)
    model = build_classifier(ClassifierConfig.from_dict({**TINY, "backbone": backbone}), num_classes=4)
    assert model.output_shape == (None, 4)
    x = tiny_dataset.x_train[:8].astype("float32")[..., None]  # one step: eager steps of a Keras application cost
    y = keras.utils.to_categorical(tiny_dataset.y_train[:8], 4)  # seconds each, and one shows the step runs
    model.run_eagerly = True
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    val = tiny_dataset.x_val.astype("float32")[..., None]
    probs = np.asarray(model(val, training=False))
    metrics = classification_metrics(tiny_dataset.y_val, probs, tiny_dataset.class_names, prefix="val")
    assert_finite_metrics(metrics, ["val_macro_f1", "val_accuracy", "val_loss", "val_auc"])
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(val[:4], training=False)), probs[:4], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backbone", KERAS_APPLICATIONS)
def test_fine_tune_fraction_means_the_same_share_of_layers_for_every_application(backbone):
    from mritune.trainables.classifier.model import build_classifier

    config = ClassifierConfig.from_dict({**TINY, "backbone": backbone, "fine_tune_fraction": 0.25})
    application = build_classifier(config, num_classes=4).layers[-2]
    flags = [layer.trainable for layer in application.layers]
    assert flags == sorted(flags)  # frozen bottom, trainable top
    assert sum(flags) == round(0.25 * len(flags))


@pytest.mark.parametrize("backbone", KERAS_APPLICATIONS)
def test_imagenet_weights_offline_are_a_one_line_error(backbone, monkeypatch, tmp_path):
    from mritune.trainables.classifier.model import build_classifier

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache: Keras must download, and cannot
    config = ClassifierConfig.from_dict({**TINY, "backbone": backbone, "weights": "imagenet"})
    with pytest.raises(ConnectionError) as error:
        build_classifier(config, num_classes=4)
    message = str(error.value)
    assert "\n" not in message and get_backbone(backbone).application in message and "local weights file" in message


def test_a_weights_file_of_another_format_is_refused(tmp_path):
    from mritune.trainables.classifier.model import build_classifier

    pickled = tmp_path / "backbone.pkl"
    pickled.write_bytes(b"not loaded")
    config = ClassifierConfig.from_dict({**TINY, "backbone": "densenet121", "weights": str(pickled)})
    with pytest.raises(ValueError, match=r"\.weights\.h5 or \.keras"):
        build_classifier(config, num_classes=4)


@pytest.mark.parametrize("backbone", BACKBONE_NAMES)
def test_image_size_below_the_backbones_minimum_is_a_one_line_error(backbone):
    with pytest.raises(ValueError, match=f"image_size 16 is below {backbone}'s minimum of 32 px"):
        ClassifierConfig.from_dict({"backbone": backbone, "image_size": 16})


@pytest.mark.slow
@pytest.mark.parametrize("backbone", KERAS_APPLICATIONS)
def test_train_classifier_runs_one_epoch_of_each_application(backbone, tiny_dataset, tmp_path):
    from mritune.trainables.classifier.training import train_classifier

    reports = []
    result = train_classifier({**TINY, "backbone": backbone, "epochs": 1}, tiny_dataset, reports.append,
                              workdir=str(tmp_path))
    assert [r.epoch for r in reports] == [1]
    assert_finite_metrics(result.metrics, ["val_macro_f1", "val_loss", "test_macro_f1", "test_auc"])


def test_a_local_keras_file_gives_the_backbone_its_weights(tmp_path):
    import keras

    from mritune.trainables.classifier.model import build_classifier

    config = {**TINY, "backbone": "mobilenetv2"}
    keras.utils.set_random_seed(0)
    source = build_classifier(ClassifierConfig.from_dict(config), num_classes=4).layers[-2]
    source.save(tmp_path / "backbone.keras")
    keras.utils.set_random_seed(1)
    loaded = build_classifier(ClassifierConfig.from_dict({**config, "weights": str(tmp_path / "backbone.keras")}),
                              num_classes=4).layers[-2]
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(source.weights, loaded.weights))
