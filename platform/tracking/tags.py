"""mritune's MLflow tag names, in one place: what its runs and registered versions carry, who sets and who reads them.

Every module that writes or reads one of these tags names it by its constant here, never by a string literal (a
renamed tag would otherwise leave a reader behind). MLflow's own tags (``mlflow.runName``, ``mlflow.parentRunId``,
``mlflow.note.content``, ``mlflow.experimentKind``) are named where they are used. ``deploy/`` reads the version tag
``dataset_fingerprint`` too; it may not import platform, so it spells the name itself (its value is this one).
"""

from __future__ import annotations

# --- on runs (the search's parent run and each trial's run) ---
ROLE_TAG = "mritune.role"  # ROLE_SEARCH on the parent run, ROLE_TRIAL on a trial's; `mritune ui` finds searches by it
ROLE_SEARCH, ROLE_TRIAL = "search", "trial"
SEARCH_TAG = "mritune.search"  # the spec's name
TASK_TAG = "mritune.task"  # the parent run's task
TRIAL_ID_TAG = "mritune.trial_id"  # Tune's trial id, on the trial's run
TRIAL_NUMBER_TAG = "mritune.trial_number"  # the order Tune started the trials in, from 1 (run_callbacks.TrialRunNamer)
WORKER_PID_TAG = "mritune.worker_pid"  # trials that share a pid ran in one reused actor
TRIAL_STARTED_TAG = "mritune.trial_started"  # when the trial's process started it (Unix seconds); the report's timeline
HOSTNAME_TAG = "mritune.hostname"
NODE_ID_TAG = "mritune.node_id"
# Set on a trial's run when a restarted process (Tune's retry after a crash, `mritune resume`) reopens it: the epoch
# its checkpoint held, and how many epochs it had already logged past that (trained again, not logged again).
RESTORED_FROM_TAG = "mritune.restored_from_epoch"
EPOCHS_REDONE_TAG = "mritune.epochs_redone"
ERROR_TAG = "mritune.error"  # a FAILED run's error
END_REASON_TAG = "mritune.end_reason"  # why a run ended other than FINISHED (KILLED, or a search's FAILED reason)
CLOSED_BY_TAG = "mritune.closed_by"  # a trial run still RUNNING that the driver ended (search end, resume)
ORPHAN_TAG = "mritune.orphaned"  # a trial run Tune never saved before the driver died; not resumed
STOPPED_BY_TAG, STOPPED_BY_ASHA = "stopped_by", "asha"  # a trial ASHA stopped at a rung (KILLED on purpose)
RERUN_CHANGED_WINNER_TAG = "mritune.rerun_changed_winner"  # parent run: the re-runs chose another configuration
REGISTERED_RERUN_TAG = "mritune.registered_rerun"  # the trial run whose re-run was registered: its seed and epochs
# Population-based schedulers (pbt, pb2): set on a trial's run by the driver each time the trial copies another
# trial's checkpoint (tracking/lineage.py); the report's lineage table reads them back.
EXPLOITS_TAG = "mritune.pbt.exploits"  # how many times the trial copied another
CLONED_FROM_TAG = "mritune.pbt.cloned_from"  # the trial it copied last
CLONED_EPOCH_TAG = "mritune.pbt.cloned_epoch"  # the epoch of that trial's checkpoint (it went on from the next)
EXPLOIT_TAG_PREFIX = "mritune.pbt.exploit."  # + n (1, 2, ...): the n-th copy as JSON (population.ExploitEvent)

# --- on registered model versions ---
VERSION_SEARCH_TAG = "search"
VERSION_SEARCH_RUN_ID_TAG = "search_run_id"
VERSION_RUN_ID_TAG = "run_id"
VERSION_TRIAL_ID_TAG = "trial_id"
VERSION_EPOCH_TAG = "epoch"
VERSION_SEARCH_METRIC_TAG = "search_metric"
DATASET_FINGERPRINT_TAG = "dataset_fingerprint"  # the gate compares a version only with a champion on the same data
GATE_METRIC_TAG = "gate_metric"
PROMOTION_TAG = "promotion"  # "pending" until the gate has run, then its one-line reason
RERUN_MEAN_TAG, RERUN_LOW_TAG, RERUN_HIGH_TAG = "rerun.mean", "rerun.ci95_low", "rerun.ci95_high"
RERUN_SEEDS_TAG, RERUN_TOP_K_TAG, RERUN_SEED_TAG = "rerun.seeds", "rerun.top_k", "rerun.seed"


def metric_tag(metric: str) -> str:
    """A version's exact score for ``metric`` (the search metric and the gate metric; the gate reads it back)."""
    return f"metric.{metric}"
