"""One self-contained HTML page: the PNGs inlined as base64, no script, no stylesheet or font from the internet."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from mritune.platform.tracking.display import floor_text, short_value
from mritune.platform.views.search_report.data import (TABLE_ROWS, TOP_TRIALS, SearchRecord, idle_gaps, lineage_rows,
                                                  slot_utilisation, timeline)
from mritune.platform.views.search_report.importance import Importance

# Section ids, in page order: the browser test checks each is present.
SECTIONS = ("summary", "best-so-far", "parallel-coordinates", "importance", "learning-curves", "timeline",
            "trials", "lineage", "winners-curse", "champion")

_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}img{max-width:100%}section{margin-bottom:2em}.note{color:#555;font-size:0.9em}
details summary{cursor:pointer;margin:0.5em 0}"""


def render(record: SearchRecord, importance: Importance, images: dict[str, Path]) -> str:
    """The page; ``images`` maps a section id to its PNG."""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Search {_e(record.name)}</title>"
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Search {_e(record.name)}</h1>",
        _section("summary", "Summary", _summary(record)),
        _section("best-so-far", "Best so far", _img(images, "best-so-far")),
        _section("parallel-coordinates", "Parallel coordinates",
                 f"<p class='note'>One line per scored trial, coloured by its score{_faded_note(record)}.</p>"
                 + _img(images, "parallel-coordinates")),
        _section("importance", "Hyperparameter importance", f"<p class='note'>{_e(importance.note)}</p>"
                 + _img(images, "importance")),
        _section("learning-curves", "Learning curves", _img(images, "learning-curves")),
        _section("timeline", "Timeline of trials per worker slot", _timeline_note(record) + _img(images, "timeline")),
        _section("trials", "Trials", _trial_table(record)),
        _section("lineage", "Lineage: which trial copied which", _lineage(record, images)),
        _section("winners-curse", "Winner's curse: the best configurations re-run", _reruns(record, images)),
        _section("champion", "Champion decision", _decision(record)),
        "</body></html>",
    ]
    return "\n".join(parts)


def _e(value) -> str:
    return html.escape(str(value))


def _section(section_id: str, title: str, body: str) -> str:
    return f"<section id='{section_id}'><h2>{_e(title)}</h2>{body}</section>"


def _img(images: dict[str, Path], key: str) -> str:
    encoded = base64.b64encode(images[key].read_bytes()).decode("ascii")
    return f"<img alt='{_e(key)}' src='data:image/png;base64,{encoded}'>"


def _summary(record: SearchRecord) -> str:
    ranked = record.ranked()
    best = ranked[0][0] if ranked and ranked[0][0].value is not None else None
    counts: dict[str, int] = {}
    for trial in record.trials:
        counts[trial.outcome] = counts.get(trial.outcome, 0) + 1
    rows = [
        ("task", record.task), ("status", record.status),
        ("search", f"{record.algorithm} + {record.scheduler}, {len(record.trials)} of {record.num_samples} trials, "
                   f"up to {record.max_t} epochs"),
        ("metric", f"{record.metric} ({record.mode})"),
        ("best", "-" if best is None else f"{best.value:.4f}{floor_text(ranked[0][1].floor)} (trial {best.trial_id}, "
                                          f"epoch {best.epoch})"),
        ("trials", ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))),
        ("wall time", f"{record.duration_s:.0f} s"),
        ("MLflow", f"<a href='{_e(record.run_url(record.parent_run_id))}'>parent run {_e(record.parent_run_id)}</a>"),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td style='text-align:left'>{v if k == 'MLflow' else _e(v)}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def _timeline_note(record: SearchRecord) -> str:
    bars = timeline(record.trials)
    gaps = idle_gaps(bars, span_s=record.duration_s, min_gap_s=1.0)
    idle = sum(end - start for _, start, end in gaps)
    return (f"<p class='note'>{len({b.slot for b in bars})} worker slots, busy "
            f"{slot_utilisation(bars, span_s=record.duration_s):.0%} of the time; {len(gaps)} idle stretches of "
            f"a second or more ({idle:.0f} slot-seconds).</p>")


def _faded_note(record: SearchRecord) -> str:
    scored = sum(1 for score, _ in record.ranked() if score.value is not None)
    if scored <= TOP_TRIALS:
        return ""
    return f"; the best {TOP_TRIALS} on top in colour, the other {scored - TOP_TRIALS} faint grey behind them"


def _trial_table(record: SearchRecord) -> str:
    """Every trial, best first: the best ``TABLE_ROWS`` in view, the others folded under one line."""
    names = [p.name for p in record.space]
    floors = [record.floor_metric] if record.floor_metric else []  # the score's real-vs-real floor, beside it
    header = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in
                              ["#", "trial", "outcome", "epochs", record.metric, *floors, "at epoch", *names]) + "</tr>"
    rows = []
    for score, trial in record.ranked():
        value = "-" if score.value is None else f"{score.value:.4f}"
        floor = ["-" if trial.floor is None else f"{trial.floor:.4g}"] if floors else []
        cells = [str(trial.number), f"<a href='{_e(record.run_url(trial.run_id))}'>{_e(trial.trial_id)}</a>",
                 _e(trial.outcome), str(trial.last_epoch), value, *floor, _e(score.epoch if score.epoch else "-"),
                 *[_e(short_value(trial.config.get(n, "-"))) for n in names]]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    shown = f"<table class='trials'>{header}{''.join(rows[:TABLE_ROWS])}</table>"
    if len(rows) <= TABLE_ROWS:
        return shown
    more = len(rows) - TABLE_ROWS
    return (f"<p class='note'>The best {TABLE_ROWS} of {len(rows)} trials; {more} more below.</p>{shown}"
            f"<details id='more-trials'><summary>{more} more trials (ranks {TABLE_ROWS + 1} to {len(rows)})</summary>"
            f"<table class='trials'>{header}{''.join(rows[TABLE_ROWS:])}</table></details>")


def _lineage(record: SearchRecord, images: dict[str, Path]) -> str:
    """pbt/pb2: every copy (a trial taking another's checkpoint and perturbed values), in the order they happened."""
    if not record.perturbed:
        return (f"<p>No lineage: {_e(record.scheduler)} trains each trial on its own (only pbt and pb2 copy "
                "checkpoints between trials).</p>")
    rows = lineage_rows(record)
    keys = list(record.perturbed)
    parts = [f"<p>{_e(record.scheduler)} perturbed {_e(', '.join(keys))}. A trial in the bottom of the population "
             "took the checkpoint of one in the top and went on from the epoch after it with the new values; the "
             "trial table's values are each trial's first ones. "
             f"{len(rows)} {'copy' if len(rows) == 1 else 'copies'}.</p>"]
    if "lineage" in images:
        parts.append(_img(images, "lineage"))
    if not rows:
        return "".join(parts)
    header = ["time (s)", "trial", "at its epoch", "copied trial", "its epoch",
              *[f"{k}: own → new (copied)" for k in keys]]
    body = ["<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        event = row.event
        source = row.source
        copied = (f"#{source.number} <a href='{_e(record.run_url(source.run_id))}'>{_e(source.trial_id)}</a>"
                  if source else _e(event.source_trial_id))
        cells = [f"{event.time:.0f}",
                 f"#{row.trial.number} <a href='{_e(record.run_url(row.trial.run_id))}'>{_e(row.trial.trial_id)}</a>",
                 str(event.epoch), copied, str(event.source_epoch),
                 *[_e(f"{short_value(event.previous.get(k, '-'))} → {short_value(event.new.get(k, '-'))} "
                      f"({short_value(event.copied.get(k, '-'))})") for k in keys]]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append(f"<table class='lineage'>{''.join(body)}</table>")
    return "".join(parts)


def _reruns(record: SearchRecord, images: dict[str, Path]) -> str:
    from mritune.platform.registry.rerun_views import curse_line, decision_line, searched_text

    summary = record.reruns
    if summary is None:
        return ("<p>No re-runs: the search registered its best trial's checkpoint as it was (promotion.rerun_top_k "
                "or rerun_seeds is 0, the registry is off, or the search has not finished).</p>")
    curse = curse_line(summary)
    parts = [f"<p>A search picks the best of many noisy validation scores, so the winner's score flatters it. The "
             f"top {summary.top_k} configurations were trained again from scratch on {len(summary.seeds)} new seeds "
             f"({', '.join(map(str, summary.seeds))}) to their trials' best epochs ({summary.seconds:.0f} s); the "
             f"registered one has the best mean {_e(summary.metric)} over its re-runs (validation: selection never "
             f"reads the test split). Test intervals: 95% bootstrap over seeds x {summary.n_test_images} test "
             f"images.</p>"]
    if curse:
        parts.append(f"<p><b>{_e(curse)}</b>.</p>")
    if summary.decision is not None:
        parts.append(f"<p>Gate: {_e(decision_line(summary.decision, summary.gate_metric))}.</p>")
    if "winners-curse" in images:
        parts.append(_img(images, "winners-curse"))
    header = ["rank", "trial", "configuration", "epochs", f"search {summary.metric}", "seeds",
              f"{summary.metric} per seed", f"{summary.gate_metric} per seed", f"{summary.metric} mean",
              f"{summary.gate_metric} mean [95%]"]
    rows = ["<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for index, config in enumerate(summary.configs):
        interval = config.interval
        test = ("-" if config.test_mean is None else f"{config.test_mean:.4f}") if interval is None else \
            f"{interval.mean:.4f} [{interval.low:.4f}, {interval.high:.4f}]"
        cells = [str(config.rank), _e(config.trial_id) + (" (registered)" if index == summary.chosen else ""),
                 _e(searched_text(config)), str(config.epoch), f"{config.trial_value:.4f}",
                 _e(", ".join(str(r.seed) for r in config.results)),
                 _e(", ".join("failed" if not r.ok else f"{r.val:.4f}" for r in config.results)),
                 _e(", ".join("failed" if not r.ok else f"{r.test:.4f}" for r in config.results)),
                 "-" if config.val_mean is None else f"{config.val_mean:.4f}", _e(test)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append(f"<table class='reruns'>{''.join(rows)}</table>")
    return "".join(parts)


def _decision(record: SearchRecord) -> str:
    decision = record.decision
    if decision is None:
        return "<p>Nothing registered by this search (registry off, still running, or no trial with a score).</p>"
    value = "-" if decision.gate_value is None else f"{decision.gate_value:.4f}{floor_text(decision.gate_floor)}"
    return (f"<p><b>models:/{_e(decision.model_name)}/{_e(decision.version)}</b> is <b>@{_e(decision.alias)}</b>: "
            f"trial {_e(decision.trial_id)}, epoch {_e(decision.epoch)}, test {_e(decision.gate_metric)} {value}.</p>"
            f"<p>Why: {_e(decision.reason)}. {_e(_chosen_how(record))} The gate compares "
            f"{_e(decision.gate_metric)} on the test split with the current champion's on the same dataset "
            f"fingerprint.</p>")


def _chosen_how(record: SearchRecord) -> str:
    if record.reruns is None:
        return f"The trial was chosen on validation ({record.metric})."
    return (f"The configuration was chosen on its re-runs' mean validation {record.metric}; under the interval rule "
            f"its test interval's worse end must beat the champion's mean (see the winner's curse above).")
