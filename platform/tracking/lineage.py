"""A population-based search's lineage in MLflow: which trial copied which, at which epoch, with what values.

The scheduler (``search/population_schedulers.py``) calls :class:`LineageRecorder` on Tune's driver loop each time
a trial copies another (``population.ExploitEvent``). The recorder writes onto the copying trial's run, before the
trial restarts from the copied checkpoint:

- tags: ``mritune.pbt.exploits`` (how many copies so far), ``mritune.pbt.cloned_from`` and
  ``mritune.pbt.cloned_epoch`` (the last one), and ``mritune.pbt.exploit.<n>``, the n-th copy as JSON;
- the artifact ``lineage.json``: every copy of the trial so far, rewritten each time.

The tags are the record (they survive a driver restart: the count is read back from the run, never kept in the
driver); the report reads them with the runs it already fetches (:func:`read_exploits`). The trial's process logs
the perturbed settings' values as the metrics ``hp/<setting>`` at every epoch (``trial_runs.hp_metrics``), so
MLflow's charts draw each trial's schedule. ``best_schedule.json`` on the parent run: the best checkpoint's
schedule (:func:`log_best_schedule`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Mapping

from mritune.platform.tracking.tags import CLONED_EPOCH_TAG, CLONED_FROM_TAG, EXPLOIT_TAG_PREFIX, EXPLOITS_TAG
from mritune.platform.tracking.trial_runs import find_trial_run
from mritune.search.population import ExploitEvent
from mritune.trainables.schedule import plain

LINEAGE_ARTIFACT = "lineage.json"
BEST_SCHEDULE_ARTIFACT = "best_schedule.json"  # on the parent run: the best checkpoint's schedule
_TAG_LIMIT = 5000  # MLflow's smallest tag-value limit across stores

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineageRecorder:
    """The scheduler's ``on_exploit`` listener (picklable: Tune saves the scheduler with the experiment)."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str

    def __call__(self, event: ExploitEvent) -> None:
        from mlflow.entities import RunTag
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.tracking_uri)
        run = find_trial_run(client, self.experiment_id, self.parent_run_id, event.trial_id)
        if run is None:  # its process opens the run before its first epoch reaches Tune: should not happen
            logger.warning("no MLflow run for trial %s: its copy of %s is not recorded", event.trial_id,
                           event.source_trial_id)
            return
        events = [*read_exploits(run.data.tags), event]
        n = len(events)
        tags = {f"{EXPLOIT_TAG_PREFIX}{n}": exploit_tag_value(event), EXPLOITS_TAG: str(n),
                CLONED_FROM_TAG: event.source_trial_id, CLONED_EPOCH_TAG: str(event.source_epoch)}
        client.log_batch(run.info.run_id, tags=[RunTag(key, value) for key, value in tags.items()])
        client.log_dict(run.info.run_id, lineage_document(event.trial_id, events), LINEAGE_ARTIFACT)


def checkpoint_schedule(checkpoint) -> list:
    """The hyperparameter schedule (``trainables/schedule.py`` segments) beside a ``ray.tune.Checkpoint``, read
    through its filesystem (a local folder or an object store); empty when it has none or it cannot be read."""
    from mritune.trainables.schedule import SCHEDULE_FILE, parse_schedule

    try:
        with checkpoint.filesystem.open_input_stream(f"{checkpoint.path}/{SCHEDULE_FILE}") as stream:
            return parse_schedule(stream.read())
    except OSError as exc:  # pyarrow: FileNotFoundError locally, OSError from object stores
        logger.info("no %s beside checkpoint %s: %s", SCHEDULE_FILE, checkpoint.path, exc)
        return []


def exploit_tag_value(event: ExploitEvent) -> str:
    """The event as compact JSON, within MLflow's tag limit (the values before and copied go first if too long)."""
    data = plain(event.to_dict())
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    if len(text) > _TAG_LIMIT:
        for key in ("operations", "previous", "copied"):
            data.pop(key, None)
        text = json.dumps(data, separators=(",", ":"), sort_keys=True)[:_TAG_LIMIT]
    return text


def read_exploits(tags: Mapping[str, str]) -> list[ExploitEvent]:
    """A trial run's copies, in order, from its ``mritune.pbt.exploit.<n>`` tags (a tag that does not parse is
    skipped with a warning)."""
    found: list[tuple[int, ExploitEvent]] = []
    for key, value in tags.items():
        suffix = key[len(EXPLOIT_TAG_PREFIX):] if key.startswith(EXPLOIT_TAG_PREFIX) else ""
        if not suffix.isdigit():
            continue
        try:
            found.append((int(suffix), ExploitEvent.from_dict(json.loads(value))))
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("tag %s does not hold an exploit event (%s); left out of the lineage", key, exc)
    return [event for _, event in sorted(found, key=lambda item: item[0])]


def lineage_document(trial_id: str, events: list[ExploitEvent]) -> dict[str, Any]:
    """The trial's ``lineage.json``."""
    return {"version": 1, "trial_id": trial_id, "exploits": [plain(event.to_dict()) for event in events]}


def log_best_schedule(tracking_uri: str, parent_run_id: str, ranked: list) -> None:
    """``best_schedule.json`` on the parent run: the hyperparameter schedule of the best trial's best checkpoint
    (``ranking.rank_trials``' first registrable trial), beside ``best_config.yaml``, which holds only the config in
    force at that epoch. Nothing when no trial is registrable or its checkpoint holds no schedule."""
    from mlflow.tracking import MlflowClient

    best = next((score for score in ranked if score.registrable), None)
    segments = checkpoint_schedule(best.checkpoint) if best is not None else []
    if not segments:
        return
    document = {"version": 1, "trial_id": best.trial_id, "epoch": best.epoch,
                "segments": [segment.to_dict() for segment in segments if segment.from_epoch <= best.epoch]}
    MlflowClient(tracking_uri).log_dict(parent_run_id, document, BEST_SCHEDULE_ARTIFACT)
