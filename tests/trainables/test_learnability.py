"""The synthetic data is learnable at the quick start's budget: a good configuration beats the majority class.

A learnability regression (a harder dataset, a batch-norm setting whose inference-mode predictions collapse, a
broken recipe) makes every trial of a quick search score like the majority class; this test fails instead.
Calibration (benchmarks/learnability.py): this configuration reaches test macro-F1 about 0.6 here, against
0.14 for always predicting NonDemented.
"""

from __future__ import annotations

import numpy as np
import pytest

GOOD = {"backbone": "small_cnn", "image_size": 32, "epochs": 6, "learning_rate": 1e-3, "dense_units": 64,
        "dropout": 0.2, "batch_size": 32, "class_weighting": "balanced", "seed": 0}
MARGIN = 0.2  # measured margin about 0.45


@pytest.fixture(scope="module")
def quick_dataset(data_cache_dir):
    from mritune.trainables.data.synthetic import load_synthetic

    # 640 images: the fewest with 10 test images of every class (quick proportions 40/30/20/10), so it is fast.
    return load_synthetic(n=640, size=32, seed=0, cache_dir=data_cache_dir)


def test_a_good_configuration_beats_the_majority_class(quick_dataset, tmp_path):
    from mritune.trainables.classifier.evaluation import majority_macro_f1
    from mritune.trainables.classifier.training import train_classifier

    data = quick_dataset
    assert np.bincount(data.y_test).min() >= 10
    majority = majority_macro_f1(data.y_test, len(data.class_names))
    val_scores: list[float] = []
    result = train_classifier(GOOD, data, lambda r: val_scores.append(r.metrics["val_macro_f1"]),
                              workdir=str(tmp_path))
    assert result.metrics["test_macro_f1"] > majority + MARGIN, (result.metrics["test_macro_f1"], majority)
    assert max(val_scores) > majority + MARGIN, (val_scores, majority)
