"""The spec's pbt/pb2 rules, checked at parse time in one line each, before anything starts."""

from __future__ import annotations

import logging

import pytest

from mritune.platform.spec.config import SpecError, apply_overrides, load_spec, parse_spec

PBT_SPEC = "configs/dcgan-pbt.yaml"


def _load(*overrides: str):
    from pathlib import Path

    return load_spec(Path(__file__).resolve().parents[2] / PBT_SPEC, list(overrides))


def test_the_example_spec_parses_and_perturbs_its_learning_rates_and_discriminator_steps():
    spec = _load()
    assert spec.scheduler.population_based and spec.perturbed == ("lr_g", "lr_d", "d_steps")
    assert parse_spec(spec.model_dump(mode="json")) == spec, "the stored spec (search folder) parses again"


@pytest.mark.parametrize("overrides, message", [
    (["search.algorithm=gpyopt"], "search.algorithm: pbt combines only with random (Ray's PopulationBasedTraining "
                                  "refuses every search algorithm but its basic variant generator"),
    (["search.algorithm=mobster"], "search.algorithm: pbt combines only with random"),
    (["search.options={n_initial_points: 2}"], "search.options.n_initial_points: pbt's trials are drawn by Ray's "
                                               "basic variant generator, which takes no options"),
    (["search.num_samples=1"], "search.num_samples: pbt needs a population of at least 2 trials"),
    (["search.max_concurrent=2"], "search.max_concurrent: 2 would split pbt's population of 4"),
    (["scheduler.perturbation_interval=6"], "scheduler.perturbation_interval: must be a whole number of epochs in "
                                            "[1, max_t - 1 = 5]"),
    (["scheduler.quantile_fraction=0.7"], "scheduler.quantile_fraction"),
    (["scheduler.grace_period=2"], "scheduler.grace_period: pbt does not read it"),
    (["scheduler.name=pb2", "scheduler.resample_probability=0.5"], "scheduler.resample_probability: pb2 does "
                                                                   "not read it"),
    (["search.space={dropout: {uniform: [0.1, 0.3]}}"], "search.space: pbt perturbs only the dcgan's lr_g, lr_d, "
                                                         "batch_size, label_smoothing, d_steps"),
    (["search.space={lr_g: {choice: [0.0001, 0.0002]}}", "scheduler.name=pb2"], "as a numeric range (uniform, "
                                                                               "loguniform, randint, ...; pb2 keeps "
                                                                               "a choice fixed)"),
    (["scheduler.max_t=1", "scheduler.perturbation_interval=null"], "scheduler.max_t: pbt needs at least 2 epochs"),
])
def test_bad_population_specs_are_one_line_errors(overrides, message):
    with pytest.raises(SpecError) as caught:
        _load(*overrides)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_pb2_choice_is_drawn_once_not_perturbed():
    space = ("search.space={lr_g: {loguniform: [0.0001, 0.001]}, batch_size: {choice: [16, 32]}}",
             "trainable={image_size: 64}")
    assert _load(*space, "scheduler.name=pb2").perturbed == ("lr_g",)
    assert _load(*space).perturbed == ("lr_g", "batch_size"), "pbt shifts a choice to a neighbouring value"


def test_switching_the_scheduler_with_set_drops_the_settings_the_new_one_does_not_read(caplog):
    raw = {"scheduler": {"name": "asha", "max_t": 4, "grace_period": 2, "reduction_factor": 2}}
    with caplog.at_level(logging.WARNING):
        result = apply_overrides(raw, ["scheduler.name=pbt"])
    assert result["scheduler"] == {"name": "pbt", "max_t": 4}
    assert "dropped the asha setting(s) grace_period, reduction_factor" in caplog.text
    kept = apply_overrides(raw, ["scheduler.name=pbt", "scheduler.grace_period=3"])
    assert kept["scheduler"]["grace_period"] == 3, "one set with --set stays (and the spec check refuses it)"


def test_other_schedulers_refuse_population_settings_and_fifo_still_ignores_ashas():
    from tests.platform.test_config import minimal

    with pytest.raises(SpecError, match="scheduler.perturbation_interval: asha does not read it"):
        parse_spec(minimal(**{"scheduler.perturbation_interval": "2"}))
    parse_spec(minimal(**{"scheduler.name": "fifo", "scheduler.grace_period": "5"}))
