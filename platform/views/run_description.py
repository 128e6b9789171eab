"""The parent run's description in the MLflow UI (``mlflow.note.content``, Markdown): what the search is, and at
its end, what it found and what the registry did with it."""

from __future__ import annotations

from mritune.platform.spec.config import SearchSpec
from mritune.platform.tracking.display import floor_text

NOTE_TAG = "mlflow.note.content"


def search_description(spec: SearchSpec, *, outcome=None) -> str:
    """Markdown for the parent run: algorithm and budget; with ``outcome`` (a ``runner.SearchOutcome``) also the
    best trial and the champion decision."""
    budget = f"{spec.search.num_samples} trials, up to {spec.epochs} epochs each"
    if spec.search.time_budget_s:
        budget += f", {spec.search.time_budget_s:g} s budget"
    lines = [
        f"**{spec.task} search `{spec.name}`**: {spec.search.algorithm} + {spec.scheduler.name}, {budget}, "
        f"{spec.search.max_concurrent or 'as many as fit'} at a time; {spec.mode}imising `{spec.metric}` on the validation split.",
    ]
    if outcome is None:
        return "\n\n".join(lines + ["Running. The trials are this run's children."])
    scored = [row for row in outcome.table if row.get(outcome.metric) is not None]
    if scored:
        top = scored[0]
        floor = floor_text(top.get(outcome.floor_metric)) if outcome.floor_metric else ""
        lines.append(f"Best: trial `{top['trial_id']}`, {outcome.metric} {top[outcome.metric]:.4f}{floor} at epoch "
                     f"{top['best_epoch']} ({len(outcome.table)} trials).")
    else:
        lines.append(f"No trial reported a finite {outcome.metric} ({len(outcome.table)} trials).")
    registration = outcome.registration
    reruns = getattr(outcome, "reruns", None)
    if reruns is not None:
        from mritune.platform.registry.rerun_views import markdown

        lines.append(markdown(reruns))
    if registration is None:
        lines.append("Nothing registered.")
    else:
        lines.append(f"Registered `models:/{registration.model_name}/{registration.version}` as "
                     f"**@{registration.alias}**: test {registration.gate_text} ({registration.reason}).")
    lines.append("The report (plots, trial table, decision) is under the artifacts' `report/`.")
    return "\n\n".join(lines)


def set_description(tracking_uri: str, run_id: str, text: str) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri).set_tag(run_id, NOTE_TAG, text)
