"""The promotion gate against a real MLflow registry (SQLite store): champion moves only on a better score."""

from __future__ import annotations

import pytest

from mritune.platform.promotion import CHALLENGER, CHAMPION, decide_alias


@pytest.fixture()
def client(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db")
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
