"""What a population-based search shows: the lineage tags read back, the report's lineage table and schedule plot,
and the console's summary (no trial is stopped by ASHA; paused trials are counted)."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

from mritune.platform.tracking.lineage import exploit_tag_value, lineage_document, read_exploits
from mritune.platform.tracking.tags import EXPLOIT_TAG_PREFIX
from mritune.platform.views.search_report import data as d
from mritune.search.population import ExploitEvent

EVENT = ExploitEvent(trial_id="t1", source_trial_id="t2", epoch=3, source_epoch=2, previous={"lr": 0.01},
                     copied={"lr": 0.002}, new={"lr": 0.0024}, operations={"lr": "* 1.2"}, time=12.0)


def test_exploit_tags_read_back_in_order_and_a_broken_one_is_skipped():
    second = dataclasses.replace(EVENT, epoch=5, source_epoch=4, new={"lr": 0.003})
    tags = {f"{EXPLOIT_TAG_PREFIX}2": exploit_tag_value(second), f"{EXPLOIT_TAG_PREFIX}1": exploit_tag_value(EVENT),
            f"{EXPLOIT_TAG_PREFIX}3": "{not json", "mritune.pbt.exploits": "2"}
    assert read_exploits(tags) == [EVENT, second]
    assert lineage_document("t1", [EVENT])["exploits"][0]["source_epoch"] == 2


def test_a_long_event_still_fits_a_tag_as_json():
    wide = dataclasses.replace(EVENT, previous={f"k{i}": "x" * 100 for i in range(60)})
    text = exploit_tag_value(wide)
    assert len(text) <= 5000 and json.loads(text)["new"] == {"lr": 0.0024}


def _record() -> d.SearchRecord:
    space = (d.SpaceParam(name="lr", kind="float", lower=1e-3, upper=1e-1, log=True),)
    trials = [d.TrialRecord(trial_id=f"t{n}", run_id=f"r{n}", run_name=f"#{n}", outcome=d.COMPLETED, start_s=0,
                            end_s=20, config={"lr": lr}, number=n,
                            curve=tuple(d.EpochPoint(epoch=e, value=0.1 * e, time_s=e) for e in range(1, 6)),
                            lineage=(EVENT,) if n == 1 else ())
              for n, lr in ((1, 0.01), (2, 0.002))]
    return d.SearchRecord(name="s", task="classifier", status="FINISHED", metric="m", mode="max",
                          algorithm="random", scheduler="pbt", max_t=5, grace_period=1, reduction_factor=3.0,
                          num_samples=2, experiment_id="1", parent_run_id="p", ui_url="http://127.0.0.1:5000",
                          duration_s=20, space=space, trials=tuple(trials), perturbed=("lr",))


def test_the_lineage_table_and_the_schedule_of_a_trial(tmp_path):
    from mritune.platform.views.search_report import html, plots
    from mritune.platform.views.search_report.importance import param_importance

    record = _record()
    rows = d.lineage_rows(record)
    assert [(row.trial.trial_id, row.source.trial_id) for row in rows] == [("t1", "t2")]
    assert d.schedule_points(record.trials[0], "lr") == [(1, 0.01), (3, 0.0024)], "from the copied epoch + 1"
    images = {key: plots.best_so_far_plot(record, tmp_path / f"{key}.png") for key in
              ("best-so-far", "parallel-coordinates", "importance", "learning-curves", "timeline")}
    images["lineage"] = plots.lineage_plot(record, tmp_path / "lineage.png")
    assert images["lineage"].read_bytes()[:4] == b"\x89PNG"
    page = html.render(record, param_importance(record), images)
    lineage = page[page.index("<section id='lineage'>"):]
    lineage = lineage[:lineage.index("</section>")]
    assert "pbt perturbed lr" in lineage and "1 copy." in lineage
    assert "#1 <a href" in lineage and ">t2</a>" in lineage and "0.01 → 0.0024 (0.002)" in lineage


def test_a_search_without_a_population_says_it_has_no_lineage(tmp_path):
    from mritune.platform.views.search_report import html

    record = dataclasses.replace(_record(), scheduler="asha", perturbed=())
    assert "No lineage: asha trains each trial on its own" in html._lineage(record, {})


def test_the_console_counts_paused_trials_not_asha_stops_under_pbt():
    from mritune.platform.views.console import ConsoleProgress

    lines: list[str] = []
    progress = ConsoleProgress(metric="m", mode="max", epochs=5, searched=["lr"], echo=lines.append,
                               population=True)
    trials = [SimpleNamespace(status="RUNNING"), SimpleNamespace(status="PAUSED"), SimpleNamespace(status="PAUSED")]
    assert "1 running, 2 paused, 0 failed" in progress.summary(trials)
    assert "ASHA" not in progress.summary(trials)


def test_the_perturbed_settings_become_stepped_metrics_numpy_scalars_included():
    import numpy as np

    from mritune.platform.tracking.trial_runs import hp_metrics

    config = {"learning_rate": np.float32(0.5), "batch_size": np.int64(32), "class_weighting": "balanced"}
    assert hp_metrics(config, ("learning_rate", "batch_size", "class_weighting")) == {
        "hp/learning_rate": 0.5, "hp/batch_size": 32.0}
