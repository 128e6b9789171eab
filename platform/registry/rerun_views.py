"""How the re-runs and the gate's decision read: the console's lines, the run description's Markdown, the table's
columns. Text only, from a ``rerun_summary.RerunSummary``; the console, the parent run and the report call these."""

from __future__ import annotations

from typing import Any

from mritune.platform.tracking.display import short_value
from mritune.platform.registry.rerun_summary import ConfigReruns, RerunSummary, interval_from_dict


def searched_text(config: ConfigReruns) -> str:
    return " ".join(f"{key}={short_value(value)}" for key, value in config.searched.items())


def table_columns(summary: RerunSummary) -> dict[str, list[Any]]:
    """One row per re-run configuration: its seeds, per-seed scores, means and test interval (MLflow's table)."""
    rows = [_row(summary, index, config) for index, config in enumerate(summary.configs)]
    return {key: [row[key] for row in rows] for key in (rows[0] if rows else {})}


def _row(summary: RerunSummary, index: int, config: ConfigReruns) -> dict[str, Any]:
    interval = config.interval
    return {
        "rank": config.rank, "trial": config.trial_id, "config": searched_text(config), "epochs": config.epoch,
        f"search {summary.metric}": config.trial_value,
        "seeds": ", ".join(str(r.seed) for r in config.results),
        f"{summary.metric} per seed": ", ".join(_number(r.val) for r in config.results),
        f"{summary.gate_metric} per seed": ", ".join(_number(r.test) for r in config.results),
        f"{summary.metric} mean": config.val_mean, f"{summary.gate_metric} mean": config.test_mean,
        "ci95 low": interval.low if interval else None, "ci95 high": interval.high if interval else None,
        "registered": (f"seed {summary.registered_seed}" if index == summary.chosen else ""),
        "failed": "; ".join(f"seed {r.seed}: {r.error}" for r in config.results if not r.ok),
    }


def console_lines(summary: RerunSummary) -> list[str]:
    """The re-run block of ``mritune search``'s summary: one line per configuration, the curse, the gate."""
    what = "the best configuration" if summary.top_k == 1 else f"top {summary.top_k} configurations"
    lines = [f"Re-runs:         {what} x {len(summary.seeds)} new seeds "
             f"({summary.top_k * len(summary.seeds)} trainings, {summary.seconds:.0f} s), chosen on mean "
             f"{summary.metric}"]
    for index, config in enumerate(summary.configs):
        mark = "  <- registered" if index == summary.chosen else ""
        lines.append(f"                 #{config.rank} trial {config.trial_id} (search {_number(config.trial_value)}):"
                     f" {_config_scores(summary, config)}{mark}")
    curse = curse_line(summary)
    if curse:
        lines.append(f"Winner's curse:  {curse}")
    if summary.decision is not None:
        lines.append(f"Gate:            {decision_line(summary.decision, summary.gate_metric)}")
    return lines


def _config_scores(summary: RerunSummary, config: ConfigReruns) -> str:
    if not config.ok:
        failed = next(r for r in config.results if not r.ok)
        return f"a re-run failed (seed {failed.seed}: {failed.error})"
    test = (f"test mean {_number(config.interval.mean)} [{_number(config.interval.low)}, "
            f"{_number(config.interval.high)}]" if config.interval else f"test mean {_number(config.test_mean)}")
    return f"{summary.metric} mean {_number(config.val_mean)}, {test}"


def curse_line(summary: RerunSummary) -> str | None:
    """The search's best validation score against its re-runs, and whether the re-runs changed the winner."""
    curse = summary.winners_curse()
    if curse is None:
        return None
    changed = ("the re-runs chose another configuration" if summary.changed_winner
               else "the re-runs kept the search's best configuration")
    return (f"best {summary.metric} {_number(curse.best_val)} in the search, {_number(curse.rerun_val_mean)} as the "
            f"mean of its re-runs (gap {curse.val_gap:+.4f}), test mean {_number(curse.rerun_test_mean)}; {changed}")


def decision_line(decision: dict, gate_metric: str) -> str:
    """The challenger's and the champion's numbers and the verdict, e.g. for the console and the report."""
    challenger = _side(decision["challenger"], gate_metric)
    champion = decision.get("champion")
    against = "no champion" if champion is None else f"v{champion['version']} {_side(champion, gate_metric)}"
    return (f"v{decision['version']} {challenger} against {against} ({decision['rule']} rule) -> "
            f"@{decision['alias']}: {decision['reason']}")


def _side(side: dict, gate_metric: str) -> str:
    interval = interval_from_dict(side.get("interval"))
    if interval is not None:
        return f"{gate_metric} mean {_number(interval.mean)} [{_number(interval.low)}, {_number(interval.high)}]"
    return f"{gate_metric} {_number(side.get('value'))} (no interval)"


def markdown(summary: RerunSummary) -> str:
    """The parent run's description block: the table, the curse and the gate."""
    head = (f"| rank | trial | config | seeds | {summary.gate_metric} per seed | {summary.metric} mean | "
            f"{summary.gate_metric} mean [95% interval] |")
    lines = [f"**Re-runs** (top {summary.top_k} x {len(summary.seeds)} new seeds, {summary.seconds:.0f} s):", "",
             head, "|---|---|---|---|---|---|---|"]
    for index, config in enumerate(summary.configs):
        interval = config.interval
        test = (f"{_number(interval.mean)} [{_number(interval.low)}, {_number(interval.high)}]" if interval
                else _number(config.test_mean))
        mark = " **registered**" if index == summary.chosen else ""
        lines.append(f"| {config.rank} | `{config.trial_id}`{mark} | {searched_text(config)} | "
                     f"{', '.join(str(r.seed) for r in config.results)} | "
                     f"{', '.join(_number(r.test) for r in config.results)} | {_number(config.val_mean)} | {test} |")
    curse = curse_line(summary)
    if curse:
        lines += ["", f"Winner's curse: {curse}."]
    if summary.decision is not None:
        lines += ["", f"Gate: {decision_line(summary.decision, summary.gate_metric)}."]
    return "\n".join(lines)


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"
