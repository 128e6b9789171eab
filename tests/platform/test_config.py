"""Search specs: shipped configs validate; bad keys and values are rejected with the key's path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mritune.platform.spec.config import SpecError, apply_overrides, load_spec, parse_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def minimal(**changes) -> dict:
    raw = {
        "name": "t",
        "task": "classifier",
        "data": {"synthetic": {"n": 64, "size": 32, "seed": 0}},
        "search": {"algorithm": "random", "num_samples": 2, "space": {"learning_rate": {"loguniform": [1e-4, 1e-2]}}},
        "trainable": {"backbone": "small_cnn"},
    }
    return apply_overrides(raw, [f"{k}={v}" for k, v in changes.items()])


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_configs_validate(name):
    spec = load_spec(CONFIGS / name)
    assert spec.name == name.removesuffix(".yaml")
    assert spec.search.space, "every shipped spec searches something"


def test_defaults_follow_the_task():
    spec = parse_spec(minimal())
    assert (spec.metric, spec.mode, spec.model_name) == ("val_macro_f1", "max", "mritune-classifier")
    assert spec.fixed_config()["image_size"] == 32  # the synthetic size unless set


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"search.spaec": "{}"}, "search.spaec: unknown key"),
        ({"resources.cpu": "-1"}, "resources.cpu"),
        ({"scheduler.name": "hyperband"}, "scheduler.name"),
        ({"search.algorithm": "smac"}, "search.algorithm"),
        ({"task": "segmenter"}, "task"),
        ({"search.space.dropout": "{normal: [0, 1]}"}, "search.space"),
        ({"search.metric": "val_f2"}, "search.metric"),
        ({"trainable.optimiser": "adam"}, "trainable"),
        # Checked here since issue 12, before any run exists (they used to fail after the parent run was opened).
        ({"search.algorithm": "gpyopt", "search.options": "{xi: 0.1}"}, "search.options.xi: unknown option"),
        ({"search.algorithm": "bayesopt", "search.options": "{pending_strategy: local_penalization}"},
         "search.options.pending_strategy: must be one of kriging_believer, constant_liar"),
        ({"search.options": "{n_initial_points: 0}"}, "search.options.n_initial_points"),
        ({"scheduler.max_t": "3", "scheduler.grace_period": "5"}, "scheduler.grace_period: must be an integer in [1"),
        ({"trainable.epochs": "2", "scheduler.grace_period": "4"}, "trainable.epochs, the scheduler's max_t, is 2"),
        ({"scheduler.reduction_factor": "1"}, "scheduler.reduction_factor"),
        ({"registry.model_name": "team/classifier"}, "registry.model_name: 'team/classifier'"),
        ({"registry.model_name": "a:b"}, "registry.model_name"),
        ({"registry.alias": "latest"}, "registry.alias"),
        ({"resources.gpu": "1.5"}, "resources.gpu: 1.5"),
    ],
)
def test_bad_specs_name_the_key(change, path):
    with pytest.raises(SpecError) as error:
        parse_spec(minimal(**change))
    message = str(error.value)
    assert path in message
    assert "\n" not in message


def test_fifo_ignores_grace_period_and_fractional_resources_pass():
    spec = parse_spec(minimal(**{"scheduler.name": "fifo", "scheduler.max_t": "2", "scheduler.grace_period": "5",
                                 "resources.gpu": "0.25", "resources.cpu": "2"}))
    assert (spec.scheduler.name, spec.resources.gpu) == ("fifo", 0.25)


def test_data_needs_exactly_one_source():
    raw = minimal()
    raw["data"]["path"] = "/somewhere"
    with pytest.raises(SpecError, match="data"):
        parse_spec(raw)


def test_searched_and_fixed_key_is_rejected():
    with pytest.raises(SpecError, match="learning_rate"):
        parse_spec(minimal(**{"trainable.learning_rate": "0.01"}))


def test_overrides_parse_yaml_values_and_name_bad_syntax(tmp_path):
    file = tmp_path / "spec.yaml"
    file.write_text(yaml.safe_dump(minimal()))
    spec = load_spec(file, ["search.num_samples=7", "resources.gpu=0.25", "search.space.dropout={uniform: [0, 0.5]}"])
    assert spec.search.num_samples == 7 and spec.resources.gpu == 0.25
    assert "dropout" in spec.search.space
    with pytest.raises(SpecError, match="key.path=value"):
        load_spec(file, ["search.num_samples"])


def test_missing_file_and_bad_yaml_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="configs/classifier-quick.yaml"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)


def test_time_budget_reaches_the_spec_and_must_be_positive():
    assert parse_spec(minimal(**{"search.time_budget_s": 90})).search.time_budget_s == 90.0
    assert parse_spec(minimal()).search.time_budget_s is None
    with pytest.raises(SpecError, match="search.time_budget_s"):
        parse_spec(minimal(**{"search.time_budget_s": 0}))


def test_mode_follows_the_chosen_metric_unless_given():
    assert parse_spec(minimal(**{"search.metric": "val_loss"})).mode == "min"
    assert parse_spec(minimal(**{"search.metric": "val_accuracy"})).mode == "max"
    assert parse_spec(minimal(**{"search.metric": "val_loss", "search.mode": "max"})).mode == "max"


def test_promotion_defaults_to_three_configurations_on_three_seeds_and_the_interval_rule():
    spec = parse_spec(minimal())
    assert (spec.promotion.rerun_top_k, spec.promotion.rerun_seeds, spec.promotion.rule) == (3, 3, "interval")
    assert spec.promotion.reruns_enabled
    assert not parse_spec(minimal(**{"promotion.rerun_top_k": 0})).promotion.reruns_enabled
    assert not parse_spec(minimal(**{"promotion.rerun_seeds": 0})).promotion.reruns_enabled
    assert parse_spec(minimal(**{"promotion.rule": "single"})).promotion.rule == "single"


@pytest.mark.parametrize(("change", "message"), [
    ({"promotion.rerun_top_k": -1}, "promotion.rerun_top_k: Input should be greater than or equal to 0"),
    ({"promotion.rerun_seeds": 101}, "promotion.rerun_seeds: Input should be less than or equal to 100"),
    ({"promotion.rerun_seeds": "many"}, "promotion.rerun_seeds: Input should be a valid integer"),
    ({"promotion.rule": "best"}, "promotion.rule: Input should be 'interval' or 'single'"),
    ({"promotion.reruns": 2}, "promotion.reruns: unknown key"),
    ({"promotion.rerun_top_k": 3}, "promotion.rerun_top_k: 3 is more than the search's 2 trials"),
])
def test_bad_promotion_keys_are_refused_at_parse_time(change, message):
    with pytest.raises(SpecError, match=f"^spec: {message}"):
        parse_spec(minimal(**change))


def test_the_default_top_k_is_accepted_for_a_search_with_fewer_trials():
    # rerun_best re-runs the trials there are; only an explicit rerun_top_k above num_samples is refused
    assert parse_spec(minimal(**{"search.num_samples": 1})).promotion.rerun_top_k == 3


@pytest.mark.parametrize(("space", "message"), [
    ({"dense_units": {"choice": [16, 32, -5]}}, "dense_units"),
    ({"optimizer": {"choice": ["adam", "rmsprop"]}}, "optimizer"),
    ({"dropout": {"uniform": [0.0, 1.5]}}, "dropout"),
    ({"batch_size": {"randint": [0, 32]}}, "batch_size"),
])
def test_every_choice_value_and_range_bound_is_validated_not_a_random_sample(space, message):
    """One bad value among the choices (or a bound outside what the training accepts) is refused every time: the
    spec is checked value by value, not by one random sample that may miss it."""
    raw = minimal()
    raw["search"]["space"] = space
    for _ in range(30):  # one random sample per parse would miss the bad value in some of 30 tries
        with pytest.raises(SpecError, match=f"search.space: .*{message}"):
            parse_spec(raw)


def test_a_valid_space_passes_with_every_value_checked():
    raw = minimal()
    raw["search"]["space"] = {"dense_units": {"choice": [16, 32]}, "dropout": {"uniform": [0.0, 0.6]},
                              "batch_size": {"randint": [8, 33]}, "l2": {"qloguniform": [1e-6, 1e-2, 1e-6]}}
    assert parse_spec(raw).search.space["dense_units"] == {"choice": [16, 32]}


@pytest.mark.parametrize("reference", ["mritune.deploy.task_logging:NO_SUCH_LOGGER", "mritune.no_such_module:X"])
def test_a_task_whose_model_logger_names_nothing_is_refused_when_the_spec_is_parsed(tmp_path, reference):
    """The model logger is on the task (Task.model_logging) and resolved by the spec schema: a reference that
    names nothing fails at parse time (one line, exit 2), not after every trial trained; with the registry off
    the same spec passes. The task comes from MRITUNE_TASK_PACKAGES, as any task kept outside mritune."""
    import os
    import subprocess
    import sys

    (tmp_path / "unloggable_task.py").write_text(
        "import dataclasses\n"
        "from mritune.trainables.classifier import TASK\n"
        "from mritune.trainables.tasks import register_task\n"
        f"register_task(dataclasses.replace(TASK, name='unloggable', model_logging={reference!r}))\n")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({**minimal(), "task": "unloggable"}))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MRITUNE_TASK_PACKAGES": "unloggable_task"}
    mritune = str(Path(sys.executable).with_name("mritune"))
    refused = subprocess.run([mritune, "search", str(spec_file), "--dry-run"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "registry.enabled: the unloggable task's model logger" in lines[0], refused.stderr
    assert reference in lines[0] and not (tmp_path / "ray_results").exists()
    check = ("from mritune.platform.spec.config import load_spec; "
             f"print(load_spec({str(spec_file)!r}, ['registry.enabled=false']).task)")
    accepted = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=300)
    assert accepted.stdout.strip() == "unloggable", accepted.stderr[-2000:]


def test_the_built_in_tasks_name_their_model_loggers():
    from mritune.trainables.tasks import get_task, task_names

    for name in task_names():
        logging = get_task(name).pyfunc_logging()
        assert callable(logging.fit_guard) and callable(logging.log)


def test_a_task_without_a_model_logger_is_refused_when_the_spec_is_parsed(tmp_path):
    """The replay task (benchmarks/replay_task.py) has no pyfunc model logger: with the registry on, its spec is
    refused at parse time (exit 2, before any trial trains), and accepted with registry.enabled=false."""
    import subprocess
    import sys

    from tests.search.test_replay import quick_configs, write_table

    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "benchmarks"))
    from scale import run_env, spec_dict

    table = write_table(tmp_path / "table.jsonl", quick_configs(4))
    spec = spec_dict(table=table, trials=2, concurrent=1, tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}",
                     storage=tmp_path)
    spec.pop("registry")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    mritune = str(Path(sys.executable).with_name("mritune"))
    env = {**run_env(table, time_scale=0.01), "MRITUNE_CACHE_DIR": str(tmp_path / "cache")}
    refused = subprocess.run([mritune, "search", str(spec_file), "--dry-run"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "registry.enabled: the replay task has no model logger" in refused.stderr
    assert not (tmp_path / "ray_results").exists()
    check = ("from mritune.platform.spec.config import load_spec; "
             f"print(load_spec({str(spec_file)!r}, ['registry.enabled=false']).registry.enabled)")
    accepted = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=300)
    assert accepted.stdout.strip() == "False", accepted.stderr[-2000:]
