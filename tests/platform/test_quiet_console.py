"""The quiet console (platform/views/quiet.py): a real search prints none of TensorFlow's, Ray's and MLflow's start-up
chatter, while a real warning and a real error from a trial still show; `--verbose` shows everything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mritune.platform.spec.config import spec_to_yaml
from mritune.platform.views.quiet import is_noise
from tests.platform.search_helpers import tiny_spec

# Lines of a real `mritune quickstart --fast` before the quiet console (driver, and Ray's worker prefix).
NOISE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "\x1b[36m(classifier_trainable pid=13884)\x1b[0m I0000 00:00:1796566171.999985   13972 port.cc:153] oneDNN custom "
    "operations are on. You may see slightly different numerical results due to floating-point round-off errors.",
    "\x1b[36m(_train_and_score pid=14890)\x1b[0m I0000 00:00:1796566263.792300   14890 cudart_stub.cc:31] Could not "
    "find cuda drivers on your machine, GPU will not be used.\x1b[32m [repeated 3x across cluster]\x1b[0m",
    "I0000 00:00:1796566295.277982   13550 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "\x1b[36m(dcgan_trainable pid=3707)\x1b[0m E0000 00:00:1796578215.336907    3774 meta_optimizer.cc:967] remapper "
    "failed: INVALID_ARGUMENT: Mutation::Apply error: fanout 'gradient_tape/discriminator_1/leaky_re_lu_4_1/"
    "LeakyRelu/LeakyReluGrad' exist for missing node 'discriminator_1/conv2d_2_1/BiasAdd'.",
    "Successfully registered model 'mritune-classifier'.",
    "Created version '1' of model 'mritune-classifier'.",
]
CUINIT = ("\x1b[36m(classifier_trainable pid=13884)\x1b[0m E0000 00:00:1796566182.498670   13972 cuda_platform.cc:52] "
          "failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
REAL_LINES = [
    "E0000 00:00:1796566182.498670   13972 op_kernel.cc:1857] OP_REQUIRES failed: Resource exhausted: OOM",
    "/x/training.py:12: UserWarning: learning rate schedule ignored",
    "[01:26] trial dcace69b completed 8 epochs: val_macro_f1 0.5988 | learning_rate=0.0133",
    "To enable the following instructions, read the manual",  # not TensorFlow's note
    "E0000 00:00:1.0 1 meta_optimizer.cc:967] remapper failed: INTERNAL: out of memory",  # not a skipped fusion
]
# What must never reach the quiet console of a real search (each was in quickstart --fast's 131 lines).
ABSENT = ["absl::InitializeLog", "oneDNN custom operations", "cudart_stub", "cpu_feature_guard",
          "Add type hints to the `predict` method", "Downloading artifacts", "can be interpreted in multiple ways",
          "Configuration for experiment", "Successfully registered model", "Started a local Ray instance",
          "Token authentication is enabled", "Creating initial MLflow database tables"]
INJECTED_WARNING = "mritune-test: a real warning from the trial"
INJECTED_ERROR = "E0000 00:00:1.000000 1 injected_op.cc:1] mritune-test: a real C++ error from the trial"

NOISY_TASK = f'''
"""A classifier task whose trials first raise a Python warning and write a TensorFlow-style error line."""
import dataclasses
import os
import warnings

from mritune.trainables.classifier import TASK
from mritune.trainables.tasks import register_task


def train_noisy(*args, **kwargs):
    warnings.warn({INJECTED_WARNING!r}, UserWarning)
    os.write(2, {(INJECTED_ERROR + chr(10)).encode()!r})
    return TASK.training_function()(*args, **kwargs)


register_task(dataclasses.replace(TASK, name="noisy", train="noisy_task:train_noisy"))
'''


@pytest.mark.parametrize("line", NOISE_LINES)
def test_the_start_up_chatter_is_noise(line):
    assert is_noise(line, nvidia_driver=False) and is_noise(line, nvidia_driver=True)


@pytest.mark.parametrize("line", REAL_LINES)
def test_real_errors_warnings_and_mritunes_lines_are_not(line):
    assert not is_noise(line, nvidia_driver=False)


def test_the_cuda_probe_is_noise_only_without_an_nvidia_driver():
    assert is_noise(CUINIT, nvidia_driver=False)
    assert not is_noise(CUINIT, nvidia_driver=True), "with a driver installed a failed cuInit is a real fault"


def _search(tmp_path: Path, *extra: str, overrides: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    (tmp_path / "noisy_task.py").write_text(NOISY_TASK)
    spec = tiny_spec(tmp_path, overrides=("search.num_samples=2", *overrides))
    raw = yaml.safe_load(spec_to_yaml(spec))
    raw["task"] = "noisy"
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(raw))
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL", "RAY_AUTH_MODE")}  # as a newcomer's shell
    env.update(PYTHONPATH=str(tmp_path), MRITUNE_TASK_PACKAGES="noisy_task",
               MRITUNE_CACHE_DIR=str(tmp_path / "cache"))
    mritune = str(Path(sys.executable).with_name("mritune"))
    result = subprocess.run([mritune, "search", str(spec_file), *extra], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_a_real_search_prints_no_chatter_but_a_real_warning_and_error_show(tmp_path):
    """A real search with registration (pyfunc logged, model loaded back): none of the chatter; the trial's own
    warning and error line reach the console; so does mritune's output."""
    result = _search(tmp_path)
    printed = result.stdout + result.stderr
    found = [text for text in ABSENT if text in printed]
    assert not found, f"chatter on the quiet console: {found}\n{printed[-4000:]}"
    if not os.path.exists("/proc/driver/nvidia/version"):
        assert "failed call to cuInit" not in printed
    assert INJECTED_WARNING in printed and INJECTED_ERROR in printed, printed[-4000:]
    assert "Registered:      models:/mritune-classifier/1" in result.stdout
    assert len(printed.splitlines()) <= 40, printed


def test_verbose_shows_everything(tmp_path):
    """`--verbose` changes nothing: TensorFlow's start-up lines from the trial workers and Tune's box print."""
    result = _search(tmp_path, "--verbose", overrides=("search.num_samples=1", "registry.enabled=false",
                                                      "scheduler.max_t=1", "scheduler.grace_period=1"))
    printed = result.stdout + result.stderr
    assert "oneDNN custom operations" in printed and "Configuration for experiment" in printed, printed[-4000:]
    assert INJECTED_WARNING in printed and INJECTED_ERROR in printed


FILTER_SCRIPT = r'''
import os, subprocess, sys, warnings
from mritune.platform.views.quiet import quiet_console
with quiet_console(verbose=sys.argv[1] == "verbose"):
    print("kept: stdout", flush=True)
    sys.stderr.write("I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. See TF_ENABLE_ONEDNN_OPTS.\n")
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    subprocess.run(["sh", "-c", "echo \"Successfully registered model 'm'.\" >&2; echo 'kept: child' >&2"], check=True)
    warnings.warn("kept: a real warning")
print("kept: after")
'''


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_the_line_filter_drops_only_noise_from_the_driver_and_its_children(mode):
    """File-descriptor level: the driver's Python writes, its raw fd writes and a child process's lines all pass
    the filter; only NOISE goes, and nothing is lost or left behind when the console closes."""
    result = subprocess.run([sys.executable, "-c", FILTER_SCRIPT, mode], capture_output=True, text=True,
                            timeout=300, check=True)
    printed = result.stdout + result.stderr
    for kept in ("kept: stdout", "kept: child", "kept: a real warning", "kept: after"):
        assert kept in printed, printed
    noise = ("oneDNN custom operations", "absl::InitializeLog", "Successfully registered model")
    if mode == "quiet":
        assert not [text for text in noise if text in printed], printed
    else:
        assert all(text in printed for text in noise), printed
