"""`compiled_inference`: one traced graph per model, and many models in one process do not read as retracing."""

from __future__ import annotations

import logging

import numpy as np


def _tiny_model(units: int):
    import keras

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(units)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


def test_each_model_gets_its_own_graph_and_no_retracing_warning(caplog):
    """Seven models scored in one process (as the re-runs, the gate and the guard do) trace once each: TensorFlow
    must not warn that the inference function is retraced, and each answer is its own model's."""
    from mritune.deploy.model_files import compiled_inference

    batch = np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for units in range(1, 8):
            model = _tiny_model(units)
            infer = compiled_inference(model, (8, 8, 1))
            out = infer(batch)
            assert out.shape == (3, units)
            np.testing.assert_allclose(out, np.asarray(model(batch, training=False)), rtol=1e-5, atol=1e-6)
            infer(batch[:1])  # another batch size: the free batch dimension, no new trace
    retracing = [r.getMessage() for r in caplog.records if "retracing" in r.getMessage()]
    assert not retracing, retracing
