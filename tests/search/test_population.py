"""search/population.py and the pbt/pb2 schedulers the factory builds: what is perturbed, the mutations and bounds
taken from the space, values kept inside it, and the Ray rule on search algorithms."""

from __future__ import annotations

import pickle

import pytest

from mritune.search.factory import (SCHEDULER_KINDS, build_scheduler, build_variant_generator,
                                    check_scheduler_settings, check_searcher_for_scheduler, first_variant)
from mritune.search.population import ClipToSpace, ExploitEvent, mutated_keys, pb2_bounds, pbt_mutations
from mritune.search.space_yaml import parse_space

SPACE = {"lr_g": {"loguniform": [1e-4, 1e-3]}, "batch_size": {"choice": [32, 16, 64]},
         "d_steps": {"randint": [1, 4]}, "latent_dim": {"choice": [16, 32]}, "dropout": {"uniform": [0.0, 0.5]}}
PERTURBABLE = ("lr_g", "lr_d", "batch_size", "label_smoothing", "d_steps")


def test_pbt_perturbs_every_perturbable_searched_setting_pb2_only_ranges():
    domains = parse_space(SPACE)
    assert mutated_keys("pbt", domains, PERTURBABLE) == ("lr_g", "batch_size", "d_steps")
    assert mutated_keys("pb2", domains, PERTURBABLE) == ("lr_g", "d_steps")  # a choice has no interval


def test_mutations_and_bounds_come_from_the_space():
    domains = parse_space(SPACE)
    mutations = pbt_mutations(domains, ("lr_g", "batch_size", "d_steps"))
    assert mutations["batch_size"] == [16, 32, 64], "a numeric choice is shifted along its sorted values"
    assert mutations["lr_g"] is domains["lr_g"]
    assert pb2_bounds(domains, ("lr_g", "d_steps")) == {"lr_g": [1e-4, 1e-3], "d_steps": [1.0, 3.0]}


@pytest.mark.parametrize("key, value, expected", [
    ("lr_g", 2e-3, 1e-3), ("lr_g", 5e-5, 1e-4), ("lr_g", 3e-4, 3e-4),
    ("d_steps", 3.6, 3), ("d_steps", 0.4, 1), ("d_steps", 2.4, 2),
    ("q", 0.27, 0.25), ("q", 0.9, 0.5),
])
def test_a_perturbed_value_is_put_back_into_its_range(key, value, expected):
    domains = parse_space({**SPACE, "q": {"quniform": [0.0, 0.5, 0.25]}})
    clip = ClipToSpace(domains=domains, keys=("lr_g", "d_steps", "q", "batch_size"))
    out = clip({key: value, "batch_size": 16})
    assert out[key] == pytest.approx(expected) and type(out[key]) is type(expected)
    assert out["batch_size"] == 16


def test_the_schedulers_are_rays_with_the_spaces_mutations_and_survive_pickling():
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.schedulers.pb2 import PB2

    domains = parse_space(SPACE)
    pbt = build_scheduler("pbt", max_t=6, perturbation_interval=2, domains=domains, perturbable=PERTURBABLE,
                          metric="swd", mode="min", resample_probability=0.5)
    assert isinstance(pbt, PopulationBasedTraining) and not isinstance(pbt, PB2)
    assert set(pbt._hyperparam_mutations) == {"lr_g", "batch_size", "d_steps"}
    assert (pbt._perturbation_interval, pbt._resample_probability, pbt._time_attr) == (2, 0.5, "training_iteration")
    pb2 = build_scheduler("pb2", max_t=8, domains=domains, perturbable=PERTURBABLE, metric="swd", mode="min",
                          synch=True)
    assert isinstance(pb2, PB2) and pb2._hyperparam_bounds == {"lr_g": [1e-4, 1e-3], "d_steps": [1.0, 3.0]}
    assert pb2._synch and not pbt._synch
    assert pb2._perturbation_interval == 2, "default: a quarter of max_t"
    restored = pickle.loads(pickle.dumps(pb2))  # Tune saves the scheduler with the experiment
    assert restored._max_t == 8 and restored._hyperparam_bounds == pb2._hyperparam_bounds


def test_only_the_variant_generator_feeds_a_population():
    assert {name for name, kind in SCHEDULER_KINDS.items() if kind.population} == {"pbt", "pb2"}
    check_searcher_for_scheduler("pbt", "random")
    check_searcher_for_scheduler("asha", "gpyopt")
    with pytest.raises(ValueError, match="pb2 combines only with random .*basic variant generator.*'tpe'"):
        check_searcher_for_scheduler("pb2", "tpe")


def test_rays_pbt_refuses_a_searcher_as_mritune_says(local_ray):
    """The rule above is Ray's own: PBT's on_trial_add raises for a SearchGenerator (a wrapped Searcher), not for
    the basic variant generator. A real Tuner with each, one epoch each."""
    from ray import tune

    from mritune.search.factory import build_searcher

    def trainable(config):
        tune.report({"loss": config["lr"]})

    space = {"lr": tune.loguniform(1e-4, 1e-2)}
    scheduler = build_scheduler("pbt", max_t=2, perturbation_interval=1, domains=space, perturbable=("lr",),
                                metric="loss", mode="min")
    refused = tune.Tuner(trainable, param_space=space, tune_config=tune.TuneConfig(
        search_alg=build_searcher("random", metric="loss", mode="min", seed=0), scheduler=scheduler, num_samples=1))
    with pytest.raises(Exception, match="Search algorithms cannot be used with"):
        refused.fit()
    accepted = tune.Tuner(trainable, param_space=space, tune_config=tune.TuneConfig(
        search_alg=build_variant_generator(seed=0), scheduler=build_scheduler(
            "pbt", max_t=2, perturbation_interval=1, domains=space, perturbable=("lr",), metric="loss", mode="min"),
        num_samples=2))
    assert len(accepted.fit()) == 2


@pytest.mark.parametrize("settings, problem", [
    ({"perturbation_interval": 4}, "perturbation_interval: must be a whole number of epochs in \\[1, max_t - 1 = 3\\]"),
    ({"perturbation_interval": 0}, "perturbation_interval"),
    ({"quantile_fraction": 0.6}, "quantile_fraction: must be in \\(0, 0.5\\]"),
    ({"quantile_fraction": 0.0}, "quantile_fraction"),
    ({"resample_probability": 1.5}, "resample_probability: must be a probability"),
])
def test_bad_population_settings_name_the_setting(settings, problem):
    with pytest.raises(ValueError, match=problem):
        check_scheduler_settings("pbt", max_t=4, **settings)


def test_a_population_needs_two_epochs():
    with pytest.raises(ValueError, match="max_t: pb2 needs at least 2 epochs"):
        check_scheduler_settings("pb2", max_t=1)


def test_first_variant_is_the_seeded_variant_generators():
    domains = parse_space(SPACE)
    assert first_variant(domains, seed=3) == first_variant(domains, seed=3)
    assert first_variant(domains, seed=3, points_to_evaluate=[{"lr_g": 5e-4}])["lr_g"] == 5e-4


def test_an_exploit_event_round_trips_through_a_dict():
    event = ExploitEvent(trial_id="a", source_trial_id="b", epoch=3, source_epoch=2, previous={"lr": 0.1},
                         copied={"lr": 0.2}, new={"lr": 0.24}, operations={"lr": "* 1.2"}, time=5.0)
    assert ExploitEvent.from_dict(event.to_dict()) == event
