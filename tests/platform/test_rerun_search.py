"""Re-runs before promotion, end to end: a real search on a real local Ray with a real MLflow store, its two best
configurations trained again on two new seeds each as Ray tasks, the chosen re-run registered with its interval,
the gate on intervals, the parent run's table, the console and the report in a real headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.faults.checker import assert_nothing_lost, tune_trial_ids
from tests.platform.search_helpers import REPORTED_RERUN_SEARCH, reported_rerun_search_root, shared_search


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, local_ray):
    root = tmp_path_factory.mktemp("rerun")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MRITUNE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mritune-cache"))
        patch.chdir(root)
        yield root


@pytest.fixture(scope="module")
def searched(workdir, tmp_path_factory):
    """The search test_search_report reads too (run once for both: search_helpers.shared_search)."""
    return shared_search(reported_rerun_search_root(tmp_path_factory), REPORTED_RERUN_SEARCH)


def test_the_two_best_configurations_are_retrained_on_new_seeds_to_their_best_epochs(searched):
    spec, outcome = searched
    summary = outcome.reruns
    registrable = [row for row in outcome.table if row["status"] == "OK" and row["val_macro_f1"] is not None]
    assert [c.trial_id for c in summary.configs] == [row["trial_id"] for row in registrable[:2]], "the one ranking"
    assert len(summary.seeds) == 2 and 0 not in summary.seeds, "new seeds, not the trials' seed 0"
    for config, row in zip(summary.configs, registrable):
        assert config.trial_value == pytest.approx(row["val_macro_f1"])
        assert [r.seed for r in config.results] == list(summary.seeds)
        for result in config.results:
            assert result.ok and result.epoch == row["best_epoch"], (result, row)
            state = json.loads((Path(result.checkpoint) / "state.json").read_text())
            assert (state["epoch"], state["config"]["seed"]) == (row["best_epoch"], result.seed), "trained afresh"
            assert Path(result.checkpoint).parent == Path(outcome.experiment_path) / "reruns"
            assert result.val == pytest.approx(state["metrics"]["val_macro_f1"]), "scored on validation"
            assert result.test == pytest.approx(result.metrics["test_macro_f1"]), "and on test"
        assert config.interval is not None and config.interval.mean == pytest.approx(
            np.mean([r.test for r in config.results]))
    val_means = [np.mean([r.val for r in c.results]) for c in summary.configs]
    assert summary.chosen == int(np.argmax(val_means)), "chosen on mean validation, not on test"


def test_the_chosen_rerun_is_registered_with_its_interval_and_the_fault_checker_agrees(searched, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    from mritune.platform.run.runner import load_data
    from mritune.trainables.data.arrays import as_model_input, resized

    spec, outcome = searched
    summary, registration = outcome.reruns, outcome.registration
    chosen, rerun = summary.chosen_config, summary.registered
    assert abs(rerun.val - chosen.val_mean) == min(abs(r.val - chosen.val_mean) for r in chosen.results)
    client = MlflowClient(outcome.tracking_uri)
    version = client.get_model_version(registration.model_name, registration.version)
    tags = version.tags
    assert tags["trial_id"] == chosen.trial_id and tags["epoch"] == str(chosen.epoch)
    assert float(tags["rerun.mean"]) == summary.interval.mean
    assert (float(tags["rerun.ci95_low"]), float(tags["rerun.ci95_high"])) == (summary.interval.low,
                                                                               summary.interval.high)
    assert tags["rerun.seeds"] == ",".join(map(str, summary.seeds)) and tags["rerun.top_k"] == "2"
    assert float(tags["metric.test_macro_f1"]) == rerun.test and float(tags["metric.val_macro_f1"]) == rerun.val
    assert "95% interval" in version.description and f"seed {rerun.seed}" in version.description
    run = client.get_run(registration.run_id)
    assert run.data.tags["mritune.trial_id"] == chosen.trial_id
    assert run.data.tags["mritune.registered_rerun"].startswith(f"seed {rerun.seed}")

    # The registered model is the stored re-run, not the trial's own checkpoint.
    mlflow.set_tracking_uri(outcome.tracking_uri)
    pulled = Path(mlflow.artifacts.download_artifacts(f"models:/{registration.model_name}/{registration.version}",
                                                      dst_path=str(tmp_path / "pulled")))
    images = as_model_input(resized(load_data(spec).x_test[:16], 32))
    np.testing.assert_allclose(_predict(next(pulled.rglob("*.keras")), images),
                               _predict(Path(rerun.checkpoint) / "model.keras", images), rtol=1e-5, atol=1e-6)

    assert_nothing_lost(outcome.tracking_uri, outcome.parent_run_id, parent_status="FINISHED",
                        trial_ids=tune_trial_ids(outcome.experiment_path), model_name=registration.model_name,
                        search_metric="val_macro_f1", gate_metric="test_macro_f1")


def test_the_parent_run_holds_the_table_and_the_console_shows_the_curse_and_the_gate(searched, capsys):
    from mlflow.tracking import MlflowClient

    from mritune.platform.registry.rerun_tracking import TABLE_ARTIFACT, read_reruns
    from mritune.platform.views.outcome import LOCAL_UI_URL, experiment_url, print_outcome

    spec, outcome = searched
    client = MlflowClient(outcome.tracking_uri)
    logged = read_reruns(client, outcome.parent_run_id)
    assert logged.chosen == outcome.reruns.chosen and logged.interval == outcome.reruns.interval
    assert logged.decision["alias"] == outcome.registration.alias
    table = json.loads(Path(client.download_artifacts(outcome.parent_run_id, TABLE_ARTIFACT)).read_text())
    assert len(table["data"]) == 2 and "test_macro_f1 per seed" in table["columns"]
    metrics = client.get_run(outcome.parent_run_id).data.metrics
    assert metrics["rerun_ci95_low"] == outcome.reruns.interval.low
    assert metrics["winners_curse_val_gap"] == pytest.approx(outcome.reruns.winners_curse().val_gap)
    note = client.get_run(outcome.parent_run_id).data.tags["mlflow.note.content"]
    assert "**Re-runs**" in note and "Winner's curse" in note

    print_outcome(outcome)
    printed = capsys.readouterr().out
    assert "Re-runs:         top 2 configurations x 2 new seeds" in printed
    assert "Winner's curse:  best val_macro_f1" in printed and "Gate:" in printed and "<- registered" in printed

    print_outcome(outcome, brief=True)  # the quick start's: fewer lines, the same gate and registration
    brief = capsys.readouterr().out
    assert "Gate:" in brief and f"models:/{outcome.registration.model_name}/" in brief
    assert f"Runs in MLflow:  {experiment_url(LOCAL_UI_URL, outcome.experiment_id)}" in brief
    assert "Search folder:" not in brief and "MLflow run:" not in brief and "mritune ui" not in brief
    assert len(brief.splitlines()) < len(printed.splitlines()) - 3


def test_a_second_registration_is_gated_on_both_intervals(searched, tmp_path):
    """The same re-run registered again: its interval's lower bound cannot beat its own mean, so it stays
    challenger, and the decision records both versions' intervals. Registered in a copy of the search's store, so
    the search test_search_report reads keeps its registry as the search left it."""
    import shutil

    from mlflow.tracking import MlflowClient

    from mritune.platform.registry.registration import register_best
    from mritune.platform.run.runner import load_data

    spec, outcome = searched
    first = outcome.registration
    store = tmp_path / "mlruns.db"
    shutil.copy(outcome.tracking_uri.removeprefix("sqlite:///"), store)
    tracking_uri = f"sqlite:///{store}"
    second = register_best(spec=spec, ranked=[], tracking_uri=tracking_uri,
                           experiment_id=outcome.experiment_id, parent_run_id=outcome.parent_run_id,
                           dataset=load_data(spec), reruns=outcome.reruns)
    interval = outcome.reruns.interval
    assert interval.low < interval.mean, "a real interval around the mean"
    assert second.alias == "challenger" and "lower bound" in second.reason and "mean" in second.reason
    assert second.decision["champion"]["version"] == first.version
    assert second.decision["champion"]["interval"] == {"mean": interval.mean, "low": interval.low,
                                                       "high": interval.high}
    assert second.decision["challenger"]["interval"]["low"] == interval.low
    champion = MlflowClient(tracking_uri).get_model_version_by_alias(first.model_name, "champion")
    assert str(champion.version) == first.version
    original = MlflowClient(outcome.tracking_uri)
    assert [str(v.version) for v in original.search_model_versions(f"name='{first.model_name}'")] == [first.version]


def test_the_report_shows_the_winners_curse_with_its_plot(searched, browser, tmp_path):
    from mritune.platform.views.search_report.build import write_search_report
    from mritune.platform.views.search_report.html import SECTIONS
    from tests.fixtures_browser import open_report

    spec, outcome = searched
    files = write_search_report(outcome.experiment_path, out_dir=tmp_path)
    assert open_report(browser, files.html) == list(SECTIONS)
    section = browser.find_element("id", "winners-curse")
    assert section.find_elements("tag name", "img"), "the winner's-curse plot"
    assert len(section.find_elements("css selector", "table.reruns tr")) == 3, "a header and two configurations"
    curse = outcome.reruns.winners_curse()
    assert f"{curse.best_val:.4f} in the search" in section.text and "(registered)" in section.text
    assert "lower bound" in browser.find_element("id", "champion").text or "no champion" in section.text


def test_a_rerun_that_diverges_on_its_seed_is_recorded_and_its_configuration_not_chosen(searched):
    """SGD at learning rate 1.0 with l2 1.0 diverges in epoch 2 (fault scenario 7's recipe): as a re-run it comes
    back as a result with its error, not as an exception, and the summary never chooses its configuration."""
    from dataclasses import replace

    from mritune.platform.tracking.ranking import TrialScore
    from mritune.platform.registry.rerun import train_on_seeds
    from mritune.platform.registry.rerun_summary import ConfigReruns, summarise
    from mritune.platform.run.runner import load_data
    from mritune.platform.infra.storage import parse_location

    spec, outcome = searched
    good = outcome.reruns.configs[0]
    bad = TrialScore(trial_id="diverging", status="OK", epochs=2, value=0.9, epoch=2, config={
        "backbone": "small_cnn", "image_size": 32, "batch_size": 32, "dense_units": 8, "learning_rate": 1.0,
        "optimizer": "sgd", "l2": 1.0, "class_weighting": "none"})
    results = train_on_seeds(spec=spec, dataset=load_data(spec), jobs=[(bad, 5)], indices=None,
                             destination=parse_location(outcome.experiment_path).child("diverging"), echo=print)
    assert len(results) == 1 and not results[0].ok and "diverged" in results[0].error
    assert results[0].val is None and results[0].checkpoint is None
    diverging = ConfigReruns(rank=1, trial_id="diverging", trial_value=0.9, epoch=2, searched={},
                             results=tuple(results))
    summary = summarise(configs=[diverging, replace(good, rank=2)], metric="val_macro_f1", mode="max",
                        gate_metric="test_macro_f1", gate_mode="max", seeds=(5,), n_test_images=0,
                        image_resamples=0, seconds=0.0)
    assert summary.chosen == 1 and summary.chosen_config.trial_id == good.trial_id


def _predict(keras_path: Path, images: np.ndarray) -> np.ndarray:
    import keras

    import mritune.trainables.layers  # noqa: F401

    return np.asarray(keras.saving.load_model(keras_path, compile=False, safe_mode=True).predict(images, verbose=0))
