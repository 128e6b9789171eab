"""A real search's report and MLflow UI, checked from the runs and in a real headless Chromium.

One small classifier search (random draws, ASHA stops some trials, the two best re-run before registering: the
search test_rerun_search reads too, run once for both, search_helpers.shared_search) and, marked slow, one DCGAN
search, on a real local Ray and a SQLite store; `mlflow ui` serves that store on 127.0.0.1 (started before the
search where this module runs first, so its start-up overlaps the search).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mritune.platform.infra.local_services import MLFLOW_SERVER_ENV
from mritune.platform.views.outcome import experiment_url
from mritune.platform.run.runner import run_search
from mritune.platform.views.search_report import data as d
from mritune.platform.views.search_report.build import write_search_report
from mritune.platform.views.search_report.html import SECTIONS
from tests.fixtures_processes import (
    MLFLOW_START_TIMEOUT_S, _console_script, mlflow_healthy, free_ports, start_in_new_session, stop_session,
    wait_until,
)
from tests.fixtures_browser import open_report
from tests.platform.search_helpers import (
    REPORTED_RERUN_SEARCH, child_runs, reported_rerun_search_root, shared_search, tiny_spec,
)

UI_DEADLINE_S = 120.0  # the React app on a loaded 2-core machine


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, local_ray):
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MRITUNE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mritune-cache"))
        patch.chdir(root)
        yield root


@pytest.fixture(scope="module")
def search_root(tmp_path_factory) -> Path:
    return reported_rerun_search_root(tmp_path_factory)


@pytest.fixture(scope="module")
def mlflow_ui(workdir, search_root):
    """`mlflow ui` on the search's SQLite store, as the quick start tells a user to run it."""
    from mlflow.tracking import MlflowClient

    search_root.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{search_root / 'mlruns.db'}"
    MlflowClient(store).search_experiments()  # creates the tables: the UI and the search must not both migrate
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    command = [_console_script("mlflow"), "ui", "--backend-store-uri", store,
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # as `mritune ui` starts it
    log = workdir / "mlflow-ui.log"
    process = start_in_new_session(command, env={**__import__("os").environ, **MLFLOW_SERVER_ENV}, log=log)
    try:
        yield url, process, log
    finally:
        stop_session(process)


@pytest.fixture(scope="module")
def classifier_search(workdir, search_root, mlflow_ui):
    return shared_search(search_root, REPORTED_RERUN_SEARCH)


def _record(spec, outcome):
    from mritune.platform.views.search_report.collect import collect_search

    return collect_search(spec=spec, tracking_uri=outcome.tracking_uri, experiment_id=outcome.experiment_id,
                          parent_run_id=outcome.parent_run_id, ui_url="http://127.0.0.1:5000")


def test_plot_data_comes_from_the_runs(classifier_search):
    spec, outcome = classifier_search
    record = _record(spec, outcome)
    assert len(record.trials) == spec.search.num_samples
    bars = d.timeline(record.trials)
    assert sorted(bar.trial_id for bar in bars) == sorted(t.trial_id for t in record.trials), "one bar per trial"
    assert len({bar.slot for bar in bars}) <= spec.search.max_concurrent, "never more slots than trials at once"
    rungs = d.asha_rungs(max_t=spec.epochs, grace_period=spec.scheduler.grace_period,
                         reduction_factor=spec.scheduler.reduction_factor)
    stopped = [t for t in record.trials if t.outcome == d.STOPPED]
    assert stopped, "ASHA stopped at least one of six trials at its first rung"
    assert all(t.last_epoch in rungs for t in stopped), "a stopped trial ends at a rung"
    assert all(t.last_epoch == spec.epochs for t in record.trials if t.outcome == d.COMPLETED)
    assert [row["trial_id"] for row in outcome.table] == [s.trial_id for s, _ in record.ranked()], \
        "the report ranks as the results table does"
    assert sorted(t.number for t in record.trials) == list(range(1, 7))
    assert record.decision is not None and record.decision.alias == "champion"


def test_mlflow_entities_read_well(classifier_search):
    from mlflow.tracking import MlflowClient

    spec, outcome = classifier_search
    client = MlflowClient(outcome.tracking_uri)
    assert client.get_experiment(outcome.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    note = client.get_run(outcome.parent_run_id).data.tags["mlflow.note.content"]
    assert "random + asha" in note and "Registered" in note and "@champion" in note
    for run in child_runs(client, outcome.experiment_id, outcome.parent_run_id):
        name = run.data.tags["mlflow.runName"]
        assert name.startswith(f"#{run.data.tags['mritune.trial_number']} learning_rate="), name
    version = client.get_model_version(outcome.registration.model_name, outcome.registration.version)
    assert {"epoch", "trial_id", "dataset_fingerprint", "promotion", "metric.test_macro_f1"} <= set(version.tags)
    assert not [key for key in version.tags if key in ("metric.pid", "metric.time_total_s")], "no Ray internals"
    reruns = {key for key in version.tags if key.startswith("rerun.")}
    assert reruns == {"rerun.mean", "rerun.ci95_low", "rerun.ci95_high", "rerun.seeds", "rerun.top_k", "rerun.seed"}
    assert len(version.tags) - len(reruns) <= 12
    # Chosen on validation among the re-runs (the version is a re-run, not the trial's own checkpoint).
    assert "of its 2 re-runs, the one whose validation val_macro_f1" in version.description
    assert "@champion" in version.description
    artifacts = {a.path for a in client.list_artifacts(outcome.parent_run_id, "report")}
    assert {"report/report.html", "report/timeline.png", "report/importance.png"} <= artifacts


def test_the_outcome_carries_where_the_report_was_written_and_the_console_prints_only_that(classifier_search,
                                                                                          tmp_path, capsys):
    """The report's location is decided where it is written (search_views) and carried on SearchOutcome; a report
    that could not be drawn leaves it None and the console says so instead of naming a file that is not there."""
    import dataclasses

    from mritune.platform.views.outcome import print_outcome
    from mritune.platform.views.search_views import finish_search_views

    spec, outcome = classifier_search
    assert outcome.report == str(Path(outcome.experiment_path) / "report" / "report.html")
    assert Path(outcome.report).is_file()
    print_outcome(outcome)
    assert f"Report:          {outcome.report}\n" in capsys.readouterr().out
    not_a_search = dataclasses.replace(outcome, experiment_path=str(tmp_path))  # no mritune_search.json there
    assert finish_search_views(spec, not_a_search) is None
    print_outcome(dataclasses.replace(not_a_search, report=None))
    printed = capsys.readouterr().out
    assert "Report:          not written" in printed and str(tmp_path / "report") not in printed
    assert not (tmp_path / "report").exists()


def test_report_renders_in_a_real_browser(classifier_search, browser, tmp_path):
    spec, outcome = classifier_search
    files = write_search_report(outcome.experiment_path, out_dir=tmp_path)
    assert open_report(browser, files.html) == list(SECTIONS)
    # best so far, parallel coordinates, importance, timeline, and the re-runs' winner's curse
    assert browser.execute_script("return document.images.length") == 6
    links = browser.execute_script("return Array.from(document.querySelectorAll('table.trials a')).length")
    assert links == spec.search.num_samples, "each trial links to its run"
    assert not browser.execute_script(
        "return Array.from(document.querySelectorAll('[src],[href]')).some(e => /^https?:\\/\\/(?!127\\.0\\.0\\.1)/"
        ".test(e.getAttribute('src') || ''))"), "nothing is fetched from the internet"
    assert browser.save_screenshot(str(tmp_path / "report.png"))


def test_mlflow_ui_opens_on_the_search_and_its_trials(classifier_search, mlflow_ui, browser, tmp_path):
    from selenium.webdriver.common.by import By

    spec, outcome = classifier_search
    url, process, log = mlflow_ui
    wait_until(lambda: mlflow_healthy(url), timeout_s=MLFLOW_START_TIMEOUT_S, what="mlflow ui coming up",
               process=process, log=log)
    browser.get(experiment_url(url, outcome.experiment_id))
    parent = wait_until(lambda: _by_text(browser, spec.name), timeout_s=UI_DEADLINE_S,
                        what="the search's parent run in the runs table")
    assert "/runs" in browser.current_url, f"landed on {browser.current_url}, not the runs table"
    expander = browser.find_elements(By.CSS_SELECTOR, "[role='gridcell'] button, [role='row'] button")
    if not _by_text(browser, "#1 "):
        row_buttons = [b for b in expander if b.location["y"] == pytest.approx(parent.location["y"], abs=20)]
        assert row_buttons, "the parent run's row has an expander for its trials"
        row_buttons[0].click()
    wait_until(lambda: len(_all_by_text(browser, "learning_rate=")) >= spec.search.num_samples,
               timeout_s=UI_DEADLINE_S, what="every trial run under the parent run")
    assert browser.save_screenshot(str(tmp_path / "mlflow_ui.png"))


def _by_text(browser, text: str):
    found = _all_by_text(browser, text)
    return found[0] if found else None


def _all_by_text(browser, text: str):
    from selenium.webdriver.common.by import By

    return [e for e in browser.find_elements(By.XPATH, f"//*[contains(text(), '{text}')]") if e.is_displayed()]


@pytest.mark.slow
def test_dcgan_search_report(workdir, browser, tmp_path):
    spec = tiny_spec(workdir, task="dcgan", overrides=("search.num_samples=3",))
    started = time.monotonic()
    outcome = run_search(spec)
    assert time.monotonic() - started < 600
    record = _record(spec, outcome)
    assert len(d.timeline(record.trials)) == 3
    assert record.mode == "min" and all(t.curve for t in record.trials)
    files = write_search_report(outcome.experiment_path, out_dir=tmp_path)
    browser.get(files.html.as_uri())
    wait_until(lambda: browser.execute_script(
        "return document.images.length == 5 && Array.from(document.images).every(i => i.naturalWidth > 0)"),
        timeout_s=30, what="every DCGAN report image decoded")
    assert "fd (min)" in browser.find_element("id", "summary").text
