"""Spec checks this issue added: backbone settings searched in vain, data.classes, the original study's spec,
and ``mritune search --dry-run`` (starts nothing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mritune.platform.spec.config import SpecError, apply_overrides, load_spec, parse_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def spec_with(space: dict, trainable: dict, **data) -> dict:
    raw = {
        "name": "t",
        "task": "classifier",
        "data": data or {"synthetic": {"n": 64, "size": 32, "seed": 0}},
        "search": {"algorithm": "random", "num_samples": 2, "space": space},
        "trainable": trainable,
    }
    return apply_overrides(raw, [])


@pytest.mark.parametrize(("space", "trainable", "message"), [
    ({"alpha": {"choice": [0.35, 1.0]}}, {"backbone": "densenet169"},
     "search.space: alpha is searched but backbone densenet169 does not use it"),
    ({"alpha": {"choice": [0.35, 1.0]}, "backbone": {"choice": ["densenet121", "resnet50"]}}, {},
     "alpha is searched but none of the backbones densenet121, resnet50 uses it"),
    ({"fine_tune_fraction": {"uniform": [0.0, 1.0]}}, {"backbone": "small_cnn"},
     "fine_tune_fraction is searched but backbone small_cnn does not use it"),
])
def test_searching_a_setting_the_backbone_ignores_is_rejected(space, trainable, message):
    with pytest.raises(SpecError) as error:
        parse_spec(spec_with(space, trainable))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_setting_one_of_the_backbone_choices_reads_may_be_searched():
    spec = parse_spec(spec_with({"alpha": {"choice": [0.35, 1.0]},
                                 "backbone": {"choice": ["densenet169", "mobilenetv2"]}}, {}))
    assert set(spec.search.space) == {"alpha", "backbone"}
    assert parse_spec(spec_with({"learning_rate": {"loguniform": [1e-4, 1e-2]}}, {"backbone": "resnet50",
                                                                                  "alpha": 0.5}))


def test_image_size_below_the_backbone_minimum_is_rejected_at_validation():
    with pytest.raises(SpecError, match="image_size 16 is below densenet121's minimum of 32 px"):
        parse_spec(spec_with({"learning_rate": {"loguniform": [1e-4, 1e-2]}},
                             {"backbone": "densenet121", "image_size": 16}))


@pytest.mark.parametrize(("data", "message"), [
    ({"synthetic": {"n": 64, "size": 32}, "classes": ["CN", "AD"]}, "data.classes names the class folders"),
    ({"path": "/data/x", "classes": ["CN", "cn"]}, "name 'CN' twice"),
    ({"path": "/data/x", "classes": ["CN"]}, "two or more names"),
])
def test_bad_data_classes_are_one_line_errors(data, message):
    with pytest.raises(SpecError, match=message) as error:
        parse_spec(spec_with({"learning_rate": {"loguniform": [1e-4, 1e-2]}}, {}, **data))
    assert str(error.value).count("\n") == 0 and "data" in str(error.value)


def test_the_original_study_spec_searches_its_five_hyperparameters_and_both_backbones_maximising_macro_f1():
    spec = load_spec(CONFIGS / "classifier-original.yaml")
    assert set(spec.search.space) == {"backbone", "learning_rate", "dense_units", "dropout", "l2", "batch_size"}
    assert spec.search.space["backbone"] == {"choice": ["densenet169", "mobilenetv2"]}
    assert (spec.metric, spec.mode) == ("val_macro_f1", "max")
    assert (spec.search.num_samples, spec.search.options["n_initial_points"], spec.epochs) == (6, 5, 10)


def test_dry_run_resolves_the_search_and_starts_nothing(tmp_path, monkeypatch):
    import ray

    from mritune.platform.run.dry_run import dry_run, format_dry_run

    monkeypatch.chdir(tmp_path)
    spec = load_spec(CONFIGS / "classifier-original.yaml")
    result = dry_run(spec)
    assert not ray.is_initialized()
    assert result.space["backbone"] == "choice ['densenet169', 'mobilenetv2']"
    assert result.space["learning_rate"] == "loguniform float (0.0001, 0.01)"
    assert result.first_config["backbone"] in ("densenet169", "mobilenetv2")
    assert 1e-4 <= result.first_config["learning_rate"] <= 1e-2 and result.first_config["weights"] == "imagenet"
    assert result.resources == "4 CPU, 0.5 GPU per trial"
    assert result.promotion == ("the 3 best re-run on 3 new seeds each, the best mean val_macro_f1 registered; "
                                "gate rule interval")
    assert "first configuration:" in format_dry_run(result)

    # The command, in a fresh folder: prints the same, writes no MLflow store and no experiment folder.
    command = [str(Path(sys.executable).parent / "mritune"), "search", str(CONFIGS / "classifier-quick.yaml"),
               "--dry-run", "--set", "search.num_samples=3"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "dry run, nothing started" in done.stdout and "3 trials" in done.stdout
    assert "    backbone: small_cnn" in done.stdout.split("first configuration:")[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no mlruns.db, mlartifacts, ray_results
