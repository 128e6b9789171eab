"""Read one search from MLflow into a ``SearchRecord``: the parent run, its trial runs, the registry's decision.

Everything the report shows comes from the tracking store, so it works for a finished search, a running one, and
one whose driver died; the spec comes from the search folder's ``mritune_search.json``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from mritune.platform.spec.config import SearchSpec
from mritune.platform.registry.rerun_tracking import read_reruns
from mritune.platform.views.search_report.data import (
    COMPLETED, FAILED, KILLED, RUNNING, STOPPED, ChampionDecision, EpochPoint, SearchRecord, SpaceParam, TrialRecord,
)
from mritune.platform.tracking.lineage import read_exploits
from mritune.platform.tracking.trial_runs import child_runs
from mritune.platform.views.search_report.histories import metric_histories
from mritune.platform.tracking import tags as t
from mritune.platform.tracking.tags import TRIAL_ID_TAG, TRIAL_NUMBER_TAG, TRIAL_STARTED_TAG
from mritune.platform.tracking.trial_runs import is_finite_number
from mritune.trainables.tasks import get_task

logger = logging.getLogger(__name__)

_OUTCOMES = {"FINISHED": COMPLETED, "FAILED": FAILED, "RUNNING": RUNNING, "SCHEDULED": RUNNING}


def collect_search(*, spec: SearchSpec, tracking_uri: str, experiment_id: str, parent_run_id: str,
                   ui_url: str) -> SearchRecord:
    """The search as the report draws it; ``ui_url`` is the MLflow UI its trial links point to."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    parent = client.get_run(parent_run_id)
    origin_s = parent.info.start_time / 1000.0
    space = space_params(spec)
    runs = child_runs(client, experiment_id, parent_run_id)
    histories = metric_histories(client, [run.info.run_id for run in runs], spec.metric)
    floor_metric = get_task(spec.task).floor_of(spec.metric)
    trials = [_trial_record(run, histories[run.info.run_id], space, origin_s, floor_metric) for run in runs]
    trials = _numbered(trials)
    end_s = (parent.info.end_time / 1000.0 if parent.info.end_time else time.time()) - origin_s
    return SearchRecord(
        name=spec.name, task=spec.task, status=parent.info.status, metric=spec.metric, mode=spec.mode,
        algorithm=spec.search.algorithm, scheduler=spec.scheduler.name, max_t=spec.epochs,
        grace_period=spec.scheduler.grace_period, reduction_factor=float(spec.scheduler.reduction_factor),
        num_samples=spec.search.num_samples, experiment_id=experiment_id, parent_run_id=parent_run_id,
        ui_url=ui_url, duration_s=max([end_s, *(t.end_s for t in trials)]), space=tuple(space),
        trials=tuple(trials), decision=champion_decision(client, spec.model_name, parent_run_id, task=spec.task),
        reruns=read_reruns(client, parent_run_id), floor_metric=floor_metric, perturbed=spec.perturbed,
    )


def space_params(spec: SearchSpec) -> list[SpaceParam]:
    """The spec's searched hyperparameters (search.space_ray's view of them), as the report's axes."""
    from mritune.search.space_ray import convert_ray_space
    from mritune.search.space_yaml import parse_space

    space = convert_ray_space(parse_space(spec.search.space))
    return [SpaceParam(name=p.name, kind=p.kind, lower=p.lower, upper=p.upper, log=p.log, values=tuple(p.values))
            for p in space.params]


def _trial_record(run, history: list, space: list[SpaceParam], origin_s: float,
                  floor_metric: str | None = None) -> TrialRecord:
    tags = run.data.tags
    history = sorted(history, key=lambda m: m.step)
    curve = tuple(EpochPoint(epoch=int(m.step), value=float(m.value), time_s=m.timestamp / 1000.0 - origin_s)
                  for m in history)
    started = float(tags.get(TRIAL_STARTED_TAG, run.info.start_time / 1000.0)) - origin_s
    # A bar ends at the trial's own last report: the run's end time can be the driver's later re-close
    # (run_callbacks.TrialRunCloser), which would stretch the bar over the next trial in the same worker slot.
    if curve:
        end_s = max(started, curve[-1].time_s)
    elif run.info.end_time:
        end_s = run.info.end_time / 1000.0 - origin_s
    else:
        end_s = started
    return TrialRecord(
        trial_id=tags.get(TRIAL_ID_TAG, run.info.run_id), run_id=run.info.run_id,
        run_name=tags.get("mlflow.runName", ""), outcome=_outcome(run),
        start_s=started, end_s=end_s, config=_typed_config(run.data.params, space), curve=curve,
        number=int(tags.get(TRIAL_NUMBER_TAG, 0)), floor=_finite(run.data.metrics.get(floor_metric or "")),
        # Copies in report time (seconds since the search started), as every other time of the record.
        lineage=tuple(dataclasses.replace(event, time=event.time - origin_s) for event in read_exploits(tags)),
    )


def _finite(value) -> float | None:
    return float(value) if is_finite_number(value) else None


def _numbered(trials: list[TrialRecord]) -> list[TrialRecord]:
    """Trials the driver did not number (it numbers them at their first result) get the next numbers by start."""
    taken = max((t.number for t in trials), default=0)
    out = []
    for trial in sorted(trials, key=lambda t: (t.number == 0, t.number, t.start_s)):
        if trial.number == 0:
            taken += 1
            trial = dataclasses.replace(trial, number=taken)
        out.append(trial)
    return out


def _outcome(run) -> str:
    if run.data.tags.get(t.STOPPED_BY_TAG) == t.STOPPED_BY_ASHA:
        return STOPPED
    return _OUTCOMES.get(run.info.status, KILLED)


def _typed_config(params: dict[str, str], space: list[SpaceParam]) -> dict[str, Any]:
    """MLflow keeps params as text: the searched ones back as numbers, or as the category's text."""
    config: dict[str, Any] = {}
    for param in space:
        text = params.get(param.name)
        if text is None:
            continue
        if param.kind in ("float", "int"):
            try:
                config[param.name] = float(text) if param.kind == "float" else int(float(text))
            except ValueError:
                logger.warning("parameter %s=%r is not a number; left out of the report's plots", param.name, text)
        else:
            config[param.name] = text
    return config


def champion_decision(client, model_name: str, parent_run_id: str, *, task: str) -> ChampionDecision | None:
    """The version this search registered, its alias, the gate's reason, and the gate metric's real-vs-real floor
    when ``task`` declares one (a version tag); None if it registered nothing."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException as exc:
        logger.info("no registered versions of %s: %s", model_name, exc)
        return None
    ours = [v for v in versions if v.tags.get(t.VERSION_SEARCH_RUN_ID_TAG) == parent_run_id]
    if not ours:
        return None
    # search_model_versions leaves aliases out: the version itself carries them.
    version = client.get_model_version(model_name, max(ours, key=lambda v: int(v.version)).version)
    gate = version.tags.get(t.GATE_METRIC_TAG, "")
    value = version.tags.get(t.metric_tag(gate))
    aliases = list(getattr(version, "aliases", []) or [])
    floor = get_task(task).floor_of(gate)
    return ChampionDecision(
        model_name=model_name, version=str(version.version), alias=", ".join(aliases) or "(alias moved on)",
        trial_id=version.tags.get(t.VERSION_TRIAL_ID_TAG, ""), epoch=version.tags.get(t.VERSION_EPOCH_TAG, ""),
        gate_metric=gate,
        gate_value=float(value) if value is not None else None, reason=version.tags.get(t.PROMOTION_TAG, ""),
        gate_floor=_number(version.tags.get(t.metric_tag(floor))) if floor else None,
    )


def _number(text: str | None) -> float | None:
    try:
        return _finite(float(text)) if text is not None else None
    except ValueError:
        return None
