"""Each task's gate metric recomputed on resampled test images (Task.test_resampler): on all the images it is the
evaluator's own number, so the re-runs' intervals are about the metric the gate compares."""

from __future__ import annotations

import numpy as np
import pytest

from mritune.trainables.classifier.evaluation import classifier_test_evaluation, macro_f1
from mritune.trainables.tasks import get_task


@pytest.mark.parametrize("seed", range(20))
def test_macro_f1_is_sklearns_with_every_class_listed(seed):
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3 if seed % 2 else 4, 30)  # odd seeds: class 3 never present
    predicted = rng.integers(0, 4 if seed % 3 else 2, 30)  # every third: classes 2 and 3 never predicted
    expected = f1_score(labels, predicted, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    assert macro_f1(labels, predicted, 4) == pytest.approx(expected, abs=1e-12)


def test_the_classifiers_resampler_gives_the_evaluators_test_macro_f1(tmp_path, tiny_dataset):
    import keras

    from mritune.trainables.classifier.config import ClassifierConfig
    from mritune.trainables.classifier.model import build_classifier
    from mritune.trainables.data.arrays import as_model_input, resized

    keras.utils.set_random_seed(0)
    model = build_classifier(ClassifierConfig.from_dict({"backbone": "small_cnn", "image_size": 32}),
                             num_classes=len(tiny_dataset.class_names))
    images = as_model_input(resized(tiny_dataset.x_test, 32))
    evaluation = classifier_test_evaluation(lambda x: model.predict(x, verbose=0), images, tiny_dataset.y_test,
                                            tuple(tiny_dataset.class_names), out_dir=tmp_path)
    resampler = get_task("classifier").gate_resampler(tiny_dataset, 32)
    assert resampler.n_images == len(tiny_dataset.y_test) and resampler.resamples >= 1000
    everything = np.arange(resampler.n_images)
    assert resampler(evaluation.outputs, everything) == pytest.approx(evaluation.metrics["test_macro_f1"])
    half = everything[: resampler.n_images // 2]
    assert resampler(evaluation.outputs, half) == pytest.approx(
        macro_f1(tiny_dataset.y_test[half], evaluation.outputs[half].argmax(1), len(tiny_dataset.class_names)))


def test_the_dcgans_resampler_gives_the_evaluators_test_fd(tmp_path, tiny_dataset):
    import keras

    from mritune.trainables.dcgan.config import DCGANConfig
    from mritune.trainables.dcgan.evaluation import generator_test_evaluation
    from mritune.trainables.dcgan.model import build_generator

    keras.utils.set_random_seed(0)
    cfg = DCGANConfig.from_dict({"image_size": 32, "latent_dim": 16, "base_filters": 8})
    evaluation = generator_test_evaluation(build_generator(cfg), tiny_dataset, image_size=32, latent_dim=16,
                                           out_dir=tmp_path)
    resampler = get_task("dcgan").gate_resampler(tiny_dataset, 32)
    everything = np.arange(resampler.n_images)
    assert get_task("dcgan").gate_metric == "test_fd"
    assert resampler(evaluation.outputs, everything) == pytest.approx(evaluation.metrics["test_fd"])
    resampled = np.random.default_rng(0).integers(0, resampler.n_images, resampler.n_images)
    assert resampler(evaluation.outputs, resampled) != pytest.approx(evaluation.metrics["test_fd"], rel=1e-9)
