"""Space conversion: Ray Tune domains ↔ unit cube, and the YAML spec format → Ray Tune domains."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ray import tune

from mritune.search.space_ray import convert_ray_space
from mritune.search.space_yaml import parse_space


def full_space() -> dict:
    return {
        "lr": tune.loguniform(1e-5, 1e-2),
        "dropout": tune.uniform(0.0, 0.5),
        "momentum": tune.quniform(0.8, 0.99, 0.01),
        "decay": tune.qloguniform(1e-4, 1e-1, 5e-5),
        "layers": tune.randint(1, 4),
        "batch": tune.qrandint(16, 128, 16),
        "filters": tune.lograndint(8, 257),
        "units": tune.choice([64, 128, 256]),
        "optimizer": {"name": tune.choice(["adam", "sgd", "rmsprop"]), "nesterov": tune.choice([True, False])},
        "epochs": 5,
        "model": {"kind": "mobilenet"},
    }


def test_round_trip_over_every_domain_type():
    space = convert_ray_space(full_space())
    rng = np.random.default_rng(0)
    for u in space.sample_unit(rng, 300):
        config = space.decode(u)
        assert space.decode(space.encode(config)) == config
        assert 1e-5 <= config["lr"] <= 1e-2 and 0 <= config["dropout"] <= 0.5
        assert config["layers"] in (1, 2, 3) and isinstance(config["layers"], int)
        assert config["batch"] % 16 == 0 and 16 <= config["batch"] <= 128
        assert 8 <= config["filters"] <= 256 and isinstance(config["filters"], int)
        assert math.isclose(round(config["momentum"] / 0.01) * 0.01, config["momentum"])
        assert 0.8 - 1e-9 <= config["momentum"] <= 0.99 + 1e-9
        assert config["units"] in (64, 128, 256) and config["optimizer"]["name"] in ("adam", "sgd", "rmsprop")
        assert config["optimizer"]["nesterov"] in (True, False)
        assert config["epochs"] == 5 and config["model"] == {"kind": "mobilenet"}


def test_loguniform_is_modelled_in_log_space_and_integers_are_uniform():
    space = convert_ray_space(full_space())
    configs = [space.decode(u) for u in space.sample_unit(np.random.default_rng(1), 2000)]
    median_log_lr = np.median([math.log10(c["lr"]) for c in configs])
    assert -4.0 < median_log_lr < -3.0  # log-uniform on [1e-5, 1e-2] has median 10^-3.5
    counts = np.bincount([c["layers"] for c in configs], minlength=4)[1:]
    assert counts.min() > 0.25 * len(configs)
    assert {c["batch"] for c in configs} == set(range(16, 129, 16))


def test_categorical_is_one_hot_and_numeric_choice_is_one_ordinal_coordinate():
    space = convert_ray_space({"units": tune.choice([256, 64, 128]), "act": tune.choice(["relu", "gelu"])})
    assert space.dim == 3
    assert space.encode({"units": 64, "act": "gelu"}).tolist() == pytest.approx([1 / 6, 0.0, 1.0])


@pytest.mark.parametrize("domain, kind", [(tune.randn(0, 1), "Normal"), (tune.grid_search([1, 2]), "grid_search"),
                                          (tune.sample_from(lambda spec: 1), "Function")])
def test_unsupported_domains_name_the_key_and_type(domain, kind):
    with pytest.raises(ValueError, match=rf"^train/opt/x: unsupported domain type.*{kind}"):
        convert_ray_space({"train": {"opt": {"x": domain}}})


def test_encode_rejects_values_outside_the_space():
    space = convert_ray_space({"act": tune.choice(["relu", "gelu"]), "x": tune.uniform(0, 1)})
    with pytest.raises(ValueError, match="act: 'tanh' is not one of the choices"):
        space.encode({"act": "tanh", "x": 0.5})
    with pytest.raises(ValueError, match="x: missing from config"):
        space.encode({"act": "relu"})


def test_parse_space_builds_ray_domains_for_every_yaml_entry():
    spec = {"learning_rate": {"loguniform": [1e-5, 1e-2]}, "units": {"choice": [64, 128, 256]},
            "dropout": {"uniform": [0.0, 0.5]}, "momentum": {"quniform": [0.8, 0.99, 0.01]},
            "decay": {"qloguniform": [1e-4, 1e-1, 1e-4]}, "layers": {"randint": [1, 4]},
            "batch": {"qrandint": [16, 128, 16]}, "optimizer": {"name": {"choice": ["adam", "sgd"]}, "beta": 0.9},
            "epochs": 10}
    parsed = parse_space(spec)
    assert parsed["epochs"] == 10 and parsed["optimizer"]["beta"] == 0.9
    from ray.tune.search.sample import LogUniform

    assert parsed["learning_rate"].lower == 1e-5 and isinstance(parsed["learning_rate"].get_sampler(), LogUniform)
    assert parsed["batch"].get_sampler().q == 16
    space = convert_ray_space(parsed)
    assert [p.name for p in space.params] == ["learning_rate", "units", "dropout", "momentum", "decay", "layers",
                                               "batch", "optimizer/name"]


@pytest.mark.parametrize("entry, message", [
    ({"normal": [0, 1]}, r"search\.space\.dropout: unknown domain 'normal'; expected one of uniform, loguniform"),
    ({"uniform": [0.5]}, r"search\.space\.dropout: uniform needs a list of 2 numbers"),
    ({"uniform": [0.5, 0.1]}, r"search\.space\.dropout: uniform needs lower < upper"),
    ({"loguniform": [0, 1]}, r"search\.space\.dropout: loguniform needs a lower bound > 0"),
    ({"choice": []}, r"search\.space\.dropout: choice needs a non-empty list"),
    ({"randint": [1.5, 4]}, r"search\.space\.dropout: randint needs integer arguments"),
    ({"quniform": [0, 1, 0]}, r"search\.space\.dropout: quniform needs q > 0"),
])
def test_parse_space_errors_name_the_key_path(entry, message):
    with pytest.raises(ValueError, match=message):
        parse_space({"dropout": entry})


def test_parse_space_errors_name_nested_key_paths():
    with pytest.raises(ValueError, match=r"^search\.space\.optimizer\.lr: unknown domain 'gauss'"):
        parse_space({"optimizer": {"lr": {"gauss": [0, 1]}, "name": "adam"}})
