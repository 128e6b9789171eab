"""What a person sees at hundreds to a thousand trials: the console, the results table and the search report.

The console is driven with Ray Tune's own Trial objects (1,000 of them) and a clock the test advances; the report
reads a finished search of 300 trials written into a real SQLite store (``synthetic_search``), enough to cross
every fold (20 trials drawn on top, 50 table rows, 80 timeline labels, 200 trials for fANOVA);
``benchmarks/report_scale.py`` times the same at 1,000.
"""

from __future__ import annotations

import numpy as np
import pytest

from mritune.platform.views import console
from mritune.platform.views.outcome import format_table, ui_command
from mritune.platform.views.search_report import data as d
from tests.fixtures_processes import wait_until
from tests.platform.synthetic_search import synthetic_search

REPORT_TRIALS = 300


def _trial(number: int, *, epochs: int):
    from ray.tune.experiment import Trial

    trial = Trial("mritune_trainable", config={"learning_rate": 1e-3 * (1 + number % 7), "dense_units": 32},
                  trial_id=f"t{number:04d}", stub=True)
    trial.update_last_result({"training_iteration": epochs})
    return trial


def test_console_folds_trial_lines_and_keeps_one_summary_per_30_s():
    lines: list[str] = []
    now = [0.0]
    progress = console.ConsoleProgress(metric="val_macro_f1", mode="max", epochs=9, searched=["learning_rate"],
                                       echo=lines.append, clock=lambda: now[0])
    rng = np.random.default_rng(0)
    best, new_bests_after_limit, failures = -1.0, 0, 0
    trials = []
    for number in range(1, 1001):
        now[0] += 1.7  # a trial ends every 1.7 s: 1,000 trials in 28 minutes
        failed = number % 37 == 0
        trial = _trial(number, epochs=int(rng.choice([1, 3, 9])))
        trials.append(trial)
        value = float(rng.uniform(0.2, 0.6) + 0.3 * np.log10(number) / 3)
        progress.on_trial_result(0, trials, trial, {"val_macro_f1": value})
        if failed:
            failures += 1
            progress.on_trial_error(0, trials, trial)
        else:
            progress.on_trial_complete(0, trials, trial)
        if value > best:
            new_bests_after_limit += number > console.TRIAL_LINES
            best = value
        progress.on_step_end(0, trials)
    progress.on_experiment_end(trials)

    trial_lines = [line for line in lines if " trial t" in line]
    summaries = [line for line in lines if " done, " in line]
    assert len([line for line in trial_lines if "FAILED" in line]) == console.FAILED_LINES < failures
    assert len([line for line in trial_lines if "(new best)" in line]) == new_bests_after_limit > 0
    assert len(trial_lines) <= console.TRIAL_LINES + console.FAILED_LINES + new_bests_after_limit
    stamps = [int(line[1:3]) * 60 + int(line[4:6]) for line in summaries[:-1]]  # the last one: at the end
    assert min(np.diff(stamps)) >= console.SUMMARY_EVERY_S - 1 and len(stamps) >= 1700 // (30 + 1.7)
    assert sum("from here on a trial gets a line only" in line for line in lines) == 1
    assert summaries[-1].startswith("[28:20] ") and f"{failures} failed" in summaries[-1]
    assert f"best val_macro_f1 {best:.4f} (trial " in summaries[-1]
    assert len(lines) < 150, "a 1,000-trial search prints a screenful or two, not a line per trial"


def test_results_table_shows_the_top_and_says_how_many_more():
    rows = [{"trial_id": f"t{i}", "status": "OK", "epochs": 9, "val_macro_f1": 1 - i / 1000, "best_epoch": 9,
             "config.learning_rate": 1e-3 * (1 + i % 5)} for i in range(1000)]
    table = format_table(rows, "val_macro_f1")
    assert table.count("\n| t") == 5 and table.endswith("... and 995 more trials, ranked in the report's Trials table")
    assert "more trials" not in format_table(rows[:5], "val_macro_f1")
    assert format_table(rows[:6], "val_macro_f1").endswith("... and 1 more trial, ranked in the report's Trials table")


@pytest.fixture(scope="module")
def big_search(tmp_path_factory):
    return synthetic_search(tmp_path_factory.mktemp("scale-report"), trials=REPORT_TRIALS)


def test_the_report_reads_every_trial_and_its_whole_curve(big_search):
    from mlflow.tracking import MlflowClient

    from mritune.platform.spec.config import parse_spec
    from mritune.platform.views.search_report.collect import collect_search

    state = __import__("json").loads((big_search.experiment_path / "mritune_search.json").read_text())
    record = collect_search(spec=parse_spec(state["spec"]), tracking_uri=big_search.tracking_uri,
                            experiment_id=big_search.experiment_id, parent_run_id=big_search.parent_run_id,
                            ui_url="http://127.0.0.1:5000")
    assert len(record.trials) == REPORT_TRIALS
    client = MlflowClient(big_search.tracking_uri)
    for trial in record.trials[::60]:
        history = sorted(client.get_metric_history(trial.run_id, "val_macro_f1"), key=lambda m: m.step)
        assert [(p.epoch, p.value) for p in trial.curve] == [(m.step, m.value) for m in history]
    assert len({bar.slot for bar in d.timeline(record.trials)}) == 16


def test_metric_histories_over_http_match_the_per_run_calls(mlflow_server):
    """An HTTP server has no bulk call: the per-run calls go out on threads, and nothing is mixed up."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from mritune.platform.tracking.trial_runs import child_runs
    from mritune.platform.views.search_report.histories import metric_histories

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"histories-{__import__('time').time_ns()}")
    parent = client.create_run(experiment_id)
    for i in range(12):
        run = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent.info.run_id})
        client.log_batch(run.info.run_id, metrics=[Metric("m", i + step / 10, 1000 + step, step)
                                                   for step in range(1, 2 + i % 4)])
    runs = child_runs(client, experiment_id, parent.info.run_id)
    histories = metric_histories(client, [r.info.run_id for r in runs], "m")
    assert len(runs) == 12
    for run in runs:
        expected = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "m"))
        assert sorted((m.step, m.value) for m in histories[run.info.run_id]) == expected and expected


def test_the_report_stays_legible_at_hundreds_of_trials(big_search, browser, tmp_path):
    from mritune.platform.views.search_report.build import write_search_report
    from mritune.platform.views.search_report.importance import MAX_TRIALS

    files = write_search_report(big_search.experiment_path, out_dir=tmp_path)
    browser.get(files.html.as_uri())
    wait_until(lambda: browser.execute_script(
        "return document.images.length == 5 && "
        "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"),
        timeout_s=30, what="every report image decoded")
    text = browser.find_element("tag name", "body").text
    assert f"the best {d.TOP_TRIALS} on top in colour" in text
    assert f"a random sample of {MAX_TRIALS} of the" in text
    visible_rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.trials tr')).filter(r => r.checkVisibility()).length")
    assert visible_rows == d.TABLE_ROWS + 1, "the best 50 rows (and the header) in view, the rest folded"
    summary = browser.find_element("css selector", "#more-trials summary")
    assert summary.text.startswith(f"{REPORT_TRIALS - d.TABLE_ROWS} more trials")
    height_folded = browser.execute_script("return document.body.scrollHeight")
    summary.click()
    wait_until(lambda: browser.execute_script(
        "return Array.from(document.querySelectorAll('table.trials tr')).filter(r => r.checkVisibility()).length")
        == REPORT_TRIALS + 2, timeout_s=10, what="the folded trials shown")
    assert browser.execute_script("return document.body.scrollHeight") > height_folded
    assert browser.execute_script("return document.querySelectorAll('table.trials a').length") == REPORT_TRIALS
    timeline = browser.execute_script(
        "const i = document.querySelector(\"img[alt='timeline']\"); return [i.naturalWidth, i.naturalHeight]")
    assert timeline[0] == 900 and timeline[1] <= 1200, "16 slots fit one screen-high figure"


def test_the_outcome_points_at_mritune_ui_for_a_local_store_and_at_the_server_otherwise():
    assert ui_command("sqlite:///tmp/x/mlruns.db") == "mritune ui --tracking-uri sqlite:///tmp/x/mlruns.db"
    assert ui_command("http://127.0.0.1:5005") == "open http://127.0.0.1:5005"
