"""What `mritune search` prints at the end: the best trials and where to look next."""

from __future__ import annotations

import typer

from mritune.deploy.tracking_uri import is_remote_uri
from mritune.platform.tracking.display import short_value


def format_table(rows: list[dict], metric: str, *, limit: int = 5, floor: str | None = None) -> str:
    """The best ``limit`` rows as a Markdown table, then how many more there are (the report lists them all);
    ``floor``: the column of the metric's real-vs-real floor (``results_table``), shown beside it."""
    config_keys = sorted({k for row in rows[:limit] for k in row if k.startswith("config.")})
    varying = [k for k in config_keys if len({repr(row.get(k)) for row in rows}) > 1][:6]
    floors = [floor] if floor else []
    header = ["trial", "status", "epochs", metric, *floors, "at epoch", *[k[len("config."):] for k in varying]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows[:limit]:
        value = row[metric]
        cells = [row["trial_id"], row["status"], str(row["epochs"]), "-" if value is None else f"{value:.4f}",
                 *[_number(row.get(key)) for key in floors],
                 "-" if row.get("best_epoch") is None else str(row["best_epoch"])]
        cells += [short_value(row.get(k)) for k in varying]
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > limit:
        more = len(rows) - limit
        lines.append(f"... and {more} more trial{'' if more == 1 else 's'}, ranked in the report's Trials table")
    return "\n".join(lines)


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


LOCAL_UI_URL = "http://127.0.0.1:5000"  # where the `mritune ui` of ui_command serves

def experiment_url(ui_url: str, experiment_id: str) -> str:
    """The experiment's runs in the MLflow UI. MLflow 3.17's UI picks its GenAI or model-training view from
    ``workflowType`` (URL, else the browser's last choice, else GenAI), not from the experiment's kind tag, so
    the link names it: the page opens on the runs table with the search and its trials."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}?workflowType=machine_learning"

def ui_command(tracking_uri: str) -> str:
    """What to type to see a store's runs: a server's address, or `mritune ui` (the MLflow UI on 127.0.0.1:5000)."""
    if is_remote_uri(tracking_uri):
        return f"open {tracking_uri}"
    return f"mritune ui --tracking-uri {tracking_uri}"

def print_outcome(outcome, *, brief: bool = False) -> str:
    """Print the search's table, folders and registration; returns its final status (FINISHED or FAILED).

    ``brief`` (``mritune quickstart``, whose closing lines say how to open the UI): the best three trials, the
    report without its folder, the runs' link without the command to serve them, and the registration on one line
    when re-runs gave its scores.
    """
    gap = "" if brief else "\n"
    typer.echo(f"{gap}Search {outcome.name}: {len(outcome.table)} trials, best by {outcome.metric} ({outcome.mode})")
    typer.echo(format_table(outcome.table, outcome.metric, limit=3 if brief else 5, floor=outcome.floor_metric))
    _print_locations(outcome, brief=brief)
    if outcome.status != "FINISHED":
        typer.echo(f"Status:          {outcome.status}: {outcome.status_reason}")
    registration = outcome.registration
    reruns = getattr(outcome, "reruns", None)
    if reruns is not None:
        from mritune.platform.registry.rerun_views import console_lines

        for line in console_lines(reruns):
            typer.echo(line)
    if registration is None:
        if not outcome.registry_enabled:
            typer.echo("Registry:        off (registry.enabled: false); nothing registered")
            return outcome.status
        why = ("every configuration re-run had a failed re-run" if reruns is not None
               else "no trial that ended cleanly reported a finite score")
        typer.echo(f"Registry:        nothing registered ({why})")
        return outcome.status
    where = f"epoch {registration.epoch}"
    if reruns is not None:
        where = f"re-trained on seed {reruns.registered_seed} to epoch {registration.epoch}"
    name = f"models:/{registration.model_name}/{registration.version} as @{registration.alias}"
    if brief and reruns is not None:  # the Gate line above gave the re-runs' test interval and the reason
        typer.echo(f"Registered:      {name} (trial {registration.trial_id}, {where})")
        return outcome.status
    typer.echo(f"Registered:      {name} ({registration.reason})")
    typer.echo(f"                 trial {registration.trial_id}, {where}: {test_summary(registration)}")
    return outcome.status


def _print_locations(outcome, *, brief: bool) -> None:
    """Where the search's folder, report and runs are."""
    report = getattr(outcome, "report", None)
    if not brief or report is None:
        typer.echo(f"\nSearch folder:   {outcome.experiment_path}")
    if report is not None:
        typer.echo(f"Report:          {report}")
    else:
        typer.echo(f"Report:          not written (the log above says why); draw it with "
                   f"`mritune report {outcome.experiment_path}`")
    ui_url = outcome.tracking_uri if is_remote_uri(outcome.tracking_uri) else LOCAL_UI_URL
    link = experiment_url(ui_url, outcome.experiment_id)
    if brief:
        typer.echo(f"Runs in MLflow:  {link}")
        return
    typer.echo(f"MLflow run:      {outcome.parent_run_id} (experiment {outcome.experiment_id})")
    typer.echo(f"Compare runs:    {ui_command(outcome.tracking_uri)}")
    typer.echo(f"                 then open {link}")

def test_summary(registration) -> str:
    """The registered checkpoint's test score, beside its real-vs-real floor (the DCGAN's distances) or what a model
    that learned nothing would get (the classifier's majority-class baseline)."""
    metrics = registration.metrics
    text = f"test {registration.gate_text}"
    interval = getattr(registration, "interval", None)
    if interval is not None:
        text += f", re-runs' mean {interval.mean:.4f} [{interval.low:.4f}, {interval.high:.4f}]"
    if "test_macro_f1_majority" in metrics:
        text += f" (majority-class baseline {metrics['test_macro_f1_majority']:.4f})"
    return text
