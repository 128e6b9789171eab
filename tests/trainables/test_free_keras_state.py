"""free_keras_state between trials of a reused actor: the first call freezes the imported libraries, later calls
still collect what a trial left behind (its models and reference cycles), and a trial's Keras names start afresh."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r'''
import gc, weakref
import keras
from mritune.trainables.runtime import free_keras_state

free_keras_state()                      # first trial of the process: freeze what the imports made
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()

class Cycle:
    pass

def a_trial():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    loop = Cycle(); loop.me = loop; loop.model = model   # garbage only a collection frees
    return weakref.ref(loop), model.layers[0].name

left, first_name = a_trial()
free_keras_state()                      # the next trial
assert left() is None, "the previous trial's cycle was collected"
_, second_name = a_trial()
assert second_name == first_name, (first_name, second_name)   # Keras' name counters start again
print("ok")
'''


def test_later_calls_collect_the_previous_trial_after_the_first_froze_the_libraries():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
