"""The promotion gate against a real MLflow registry (SQLite store): champion moves only on a better score."""

from __future__ import annotations

import pytest

from mritune.platform.registry.promotion import CHALLENGER, CHAMPION, SINGLE_RULE, Interval, compare, decide_alias
from tests.mlflow_stores import sqlite_store


@pytest.fixture()
def client(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(sqlite_store(tmp_path / "mlruns.db"))
    client.create_registered_model("gate-test")
    return client


def add_version(client, tmp_path, *, fingerprint: str, f1: float) -> str:
    source = tmp_path / f"model-{f1}"
    source.mkdir()
    version = client.create_model_version(
        "gate-test", source=source.as_uri(), tags={"dataset_fingerprint": fingerprint, "metric.test_macro_f1": str(f1)}
    ).version
    return version


def promote(client, version: str, *, fingerprint: str, f1: float) -> str:
    alias, _, _ = decide_alias(client, "gate-test", fingerprint=fingerprint, value=f1, metric="test_macro_f1",
                               mode="max")
    client.set_registered_model_alias("gate-test", alias, version)
    return alias


def test_first_version_becomes_champion(client, tmp_path):
    version = add_version(client, tmp_path, fingerprint="fp-a", f1=0.5)
    assert promote(client, version, fingerprint="fp-a", f1=0.5) == CHAMPION


def test_better_score_on_same_data_takes_champion_and_worse_gets_challenger(client, tmp_path):
    first = add_version(client, tmp_path, fingerprint="fp-a", f1=0.5)
    promote(client, first, fingerprint="fp-a", f1=0.5)

    worse = add_version(client, tmp_path, fingerprint="fp-a", f1=0.4)
    assert promote(client, worse, fingerprint="fp-a", f1=0.4) == CHALLENGER
    assert client.get_model_version_by_alias("gate-test", CHAMPION).version == first

    better = add_version(client, tmp_path, fingerprint="fp-a", f1=0.7)
    assert promote(client, better, fingerprint="fp-a", f1=0.7) == CHAMPION
    assert client.get_model_version_by_alias("gate-test", CHAMPION).version == better


def test_other_dataset_never_displaces_champion(client, tmp_path):
    first = add_version(client, tmp_path, fingerprint="fp-a", f1=0.5)
    promote(client, first, fingerprint="fp-a", f1=0.5)
    other = add_version(client, tmp_path, fingerprint="fp-b", f1=0.99)
    alias, previous, reason = decide_alias(client, "gate-test", fingerprint="fp-b", value=0.99,
                                           metric="test_macro_f1", mode="max")
    assert (alias, previous) == (CHALLENGER, str(first))
    assert "other data" in reason
    client.set_registered_model_alias("gate-test", alias, other)
    assert client.get_model_version_by_alias("gate-test", CHAMPION).version == first


def test_lower_is_better_for_swd(client, tmp_path):
    first = add_version(client, tmp_path, fingerprint="fp-a", f1=0.0)
    client.set_model_version_tag("gate-test", first, "metric.swd", "0.30")
    client.set_registered_model_alias("gate-test", CHAMPION, first)
    assert decide_alias(client, "gate-test", fingerprint="fp-a", value=0.2, metric="swd", mode="min")[0] == CHAMPION
    assert decide_alias(client, "gate-test", fingerprint="fp-a", value=0.4, metric="swd", mode="min")[0] == CHALLENGER


def _with_interval(client, version: str, mean: float, low: float, high: float) -> None:
    for key, value in Interval(mean=mean, low=low, high=high).tags().items():
        client.set_model_version_tag("gate-test", version, key, value)


def _crown(client, tmp_path, *, f1: float, interval: tuple[float, float, float] | None) -> str:
    version = add_version(client, tmp_path, fingerprint="fp-a", f1=f1)
    if interval:
        _with_interval(client, version, *interval)
    client.set_registered_model_alias("gate-test", CHAMPION, version)
    return str(version)


def test_an_interval_takes_champion_only_when_its_lower_bound_beats_the_champions_mean(client, tmp_path):
    champion = _crown(client, tmp_path, f1=0.74, interval=(0.70, 0.64, 0.76))
    higher_but_unsure = Interval(mean=0.75, low=0.68, high=0.82)
    alias, previous, reason = decide_alias(client, "gate-test", fingerprint="fp-a", value=0.76, metric="test_macro_f1",
                                           mode="max", interval=higher_but_unsure)
    assert (alias, previous) == (CHALLENGER, champion), "a better mean is not enough: 0.68 < 0.70"
    assert "lower bound 0.68 does not beat" in reason and f"v{champion}'s mean 0.7" in reason
    clearly = Interval(mean=0.80, low=0.72, high=0.86)
    alias, _, reason = decide_alias(client, "gate-test", fingerprint="fp-a", value=0.79, metric="test_macro_f1",
                                    mode="max", interval=clearly)
    assert alias == CHAMPION and "lower bound 0.72 beats" in reason
    # The single-number rule sees only the two versions' own test numbers: 0.76 beats 0.74.
    alias, _, reason = decide_alias(client, "gate-test", fingerprint="fp-a", value=0.76, metric="test_macro_f1",
                                    mode="max", interval=higher_but_unsure, rule=SINGLE_RULE)
    assert alias == CHAMPION and "single-number rule" in reason


def test_a_champion_without_an_interval_is_compared_by_its_single_number_and_says_so(client, tmp_path):
    old = _crown(client, tmp_path, f1=0.70, interval=None)  # registered before re-runs existed
    alias, _, reason = decide_alias(client, "gate-test", fingerprint="fp-a", value=0.73, metric="test_macro_f1",
                                    mode="max", interval=Interval(mean=0.75, low=0.71, high=0.79))
    assert alias == CHAMPION and f"v{old} has no interval: compared by its single number" in reason
    alias, _, _ = decide_alias(client, "gate-test", fingerprint="fp-a", value=0.73, metric="test_macro_f1",
                               mode="max", interval=Interval(mean=0.75, low=0.69, high=0.79))
    assert alias == CHALLENGER


def test_a_challenger_without_an_interval_compares_its_number_with_the_champions_mean(client, tmp_path):
    _crown(client, tmp_path, f1=0.80, interval=(0.70, 0.64, 0.76))
    alias, _, reason = decide_alias(client, "gate-test", fingerprint="fp-a", value=0.72, metric="test_macro_f1",
                                    mode="max", interval=None)
    assert alias == CHAMPION and "0.72 (no interval) beats" in reason and "mean 0.7" in reason


def test_for_a_lower_is_better_metric_the_upper_bound_must_beat_the_mean(client, tmp_path):
    version = add_version(client, tmp_path, fingerprint="fp-a", f1=0.0)
    client.set_model_version_tag("gate-test", version, "metric.test_swd", "100.0")
    _with_interval(client, version, 100.0, 90.0, 110.0)
    client.set_registered_model_alias("gate-test", CHAMPION, version)
    assert decide_alias(client, "gate-test", fingerprint="fp-a", value=80.0, metric="test_swd", mode="min",
                        interval=Interval(mean=85.0, low=75.0, high=95.0))[0] == CHAMPION
    alias, _, reason = decide_alias(client, "gate-test", fingerprint="fp-a", value=80.0, metric="test_swd",
                                    mode="min", interval=Interval(mean=90.0, low=70.0, high=105.0))
    assert alias == CHALLENGER and "upper bound 105 does not beat" in reason


def test_an_unknown_rule_is_a_bug_not_a_decision():
    with pytest.raises(ValueError, match="promotion rule"):
        compare(value=0.5, interval=None, champion_tags={}, champion_version="1", metric="m", mode="max", rule="x")


@pytest.mark.parametrize("tag", [None, "nan", "not a number"])
@pytest.mark.parametrize("rule", ["interval", SINGLE_RULE])
def test_a_champion_without_a_usable_metric_is_never_displaced_and_the_reason_says_why(client, tmp_path, tag, rule):
    """The gate fails closed: a champion whose metric tag is missing, NaN or not a number cannot be compared, so
    no version takes its alias, however good (the reason names the tag to fix)."""
    version = client.create_model_version("gate-test", source=tmp_path.as_uri(),
                                          tags={"dataset_fingerprint": "fp-a"}).version
    if tag is not None:
        client.set_model_version_tag("gate-test", version, "metric.test_macro_f1", tag)
    client.set_registered_model_alias("gate-test", CHAMPION, version)
    for interval in (None, Interval(mean=0.99, low=0.98, high=1.0)):
        alias, previous, reason = decide_alias(client, "gate-test", fingerprint="fp-a", value=0.99,
                                               metric="test_macro_f1", mode="max", interval=interval, rule=rule)
        assert (alias, previous) == (CHALLENGER, str(version)), reason
        assert f"v{version} has no usable metric.test_macro_f1" in reason


def test_a_champion_with_an_interval_but_no_single_number_is_still_compared_by_its_interval(client, tmp_path):
    """Under the interval rule the champion's mean decides; its missing single number does not matter there."""
    version = client.create_model_version("gate-test", source=tmp_path.as_uri(),
                                          tags={"dataset_fingerprint": "fp-a"}).version
    _with_interval(client, version, 0.70, 0.64, 0.76)
    client.set_registered_model_alias("gate-test", CHAMPION, version)
    assert decide_alias(client, "gate-test", fingerprint="fp-a", value=0.8, metric="test_macro_f1", mode="max",
                        interval=Interval(mean=0.8, low=0.75, high=0.85))[0] == CHAMPION
