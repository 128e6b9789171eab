"""The search's parent MLflow run: what it records at the start and at the end, and clean-up on resume."""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from mritune.platform.spec.config import SearchSpec, spec_to_yaml
from mritune.platform.tracking.ranking import TrialScore
from mritune.platform.tracking.tags import (CLOSED_BY_TAG, END_REASON_TAG, ORPHAN_TAG, ROLE_SEARCH, ROLE_TAG, SEARCH_TAG,
                                   TASK_TAG, TRIAL_ID_TAG, TRIAL_NUMBER_TAG)
from mritune.platform.tracking.trial_runs import child_runs

logger = logging.getLogger(__name__)


def start_search_run(*, spec: SearchSpec, dataset, tracking_uri: str, experiment_id: str, cluster) -> str:
    """Open the parent run and record the spec, searcher, space, dataset and code version; return its id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    tags = {ROLE_TAG: ROLE_SEARCH, SEARCH_TAG: spec.name, TASK_TAG: spec.task}
    commit = source_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    client = mlflow.tracking.MlflowClient(tracking_uri)
    run = client.create_run(experiment_id, run_name=spec.name, tags=tags)
    run_id = run.info.run_id
    params = {
        "task": spec.task,
        "algorithm": spec.search.algorithm,
        "num_samples": spec.search.num_samples,
        "max_concurrent": spec.search.max_concurrent,
        "metric": spec.metric,
        "mode": spec.mode,
        "scheduler": spec.scheduler.name,
        "max_t": spec.epochs,
        "grace_period": spec.scheduler.grace_period,
        "reduction_factor": spec.scheduler.reduction_factor,
        "resources_cpu": spec.resources.cpu,
        "resources_gpu": spec.resources.gpu,
        "dataset_fingerprint": dataset.fingerprint,
        "cluster_nodes": cluster.num_nodes,
        **{f"searcher.{k}": v for k, v in spec.search.options.items()},
        **_population_params(spec),
    }
    for key, value in params.items():
        client.log_param(run_id, key, str(value))
    client.log_text(run_id, spec_to_yaml(spec), "spec.yaml")
    client.log_dict(run_id, spec.search.space, "search_space.json")
    client.log_dict(run_id, dataset.summary(), "dataset.json")
    _log_dataset_input(run_id, dataset, spec)
    return run_id


def _population_params(spec: SearchSpec) -> dict[str, Any]:
    """pbt/pb2: the settings it perturbs and its own settings (perturbation_interval resolved)."""
    if not spec.scheduler.population_based:
        return {}
    from mritune.search.factory import perturbation_interval_or_default

    settings = spec.scheduler.settings()
    settings["perturbation_interval"] = perturbation_interval_or_default(settings["perturbation_interval"],
                                                                         max_t=spec.epochs)
    return {"perturbed": ",".join(spec.perturbed), **{f"scheduler.{k}": v for k, v in settings.items()}}


def _log_dataset_input(run_id: str, dataset, spec: SearchSpec) -> None:
    import mlflow

    data = mlflow.data.from_numpy(
        dataset.x_train, targets=dataset.y_train, source=_local_source(_dataset_source(spec)),
        name=f"mri-{dataset.fingerprint[:12]}", digest=dataset.fingerprint[:36],
    )
    from mlflow.entities import DatasetInput, InputTag

    tags = [InputTag(key="mlflow.data.context", value="training"), InputTag(key="fingerprint", value=dataset.fingerprint)]
    mlflow.tracking.MlflowClient().log_inputs(run_id, datasets=[DatasetInput(dataset=data._to_mlflow_entity(), tags=tags)])


def _local_source(path: str):
    """The dataset source for a local path. MLflow registers its local-file source class twice (for the schemes ""
    and "file"), so resolving a plain path warns that it "can be interpreted in multiple ways"; the class is chosen
    here instead (the path as is if a later MLflow has no such class)."""
    from mlflow.data.dataset_source_registry import get_registered_sources

    local = [source for source in get_registered_sources() if source.__name__ == "LocalArtifactDatasetSource"]
    return local[0](path) if local else path


def _dataset_source(spec: SearchSpec) -> str:
    """Where the images were read from: the dataset folder, or the synthetic dataset's cache folder."""
    if spec.data.path is not None:
        return str(Path(spec.data.path).expanduser().resolve())
    from mritune.trainables.data.synthetic import synthetic_cache_folder

    synth = spec.data.synthetic
    return str(synthetic_cache_folder(n=synth.n, size=synth.size, seed=synth.seed))


def reopen_search_run(tracking_uri: str, run_id: str) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri).update_run(run_id, status="RUNNING")


def end_search_run(tracking_uri: str, run_id: str, *, status: str, reason: str | None = None) -> None:
    """End the parent run; ``reason`` (an error, an interruption) is kept as the ``mritune.end_reason`` tag."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    if reason:
        client.set_tag(run_id, END_REASON_TAG, reason[:4000])
    client.set_terminated(run_id, status=status)


def close_orphaned_runs(tracking_uri: str, experiment_id: str, parent_run_id: str, *, reason: str = "resume") -> int:
    """Trial runs still RUNNING with no trial process behind them end KILLED, tagged ``mritune.closed_by``.

    ``resume``: runs a killed driver left behind (a resumed trial reopens its own run). ``search_end``: trials
    Ray stopped without a callback (the search's time budget ran out), closed once ``Tuner.fit`` has returned; such
    a trial may still be ending its run, and if its end lands after this one, it stands and the tag goes
    (``trial_runs.MlflowTrialObserver``).
    ``search_failed`` / ``search_killed``: the search itself ended by an error or an interruption.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'RUNNING'"
    )
    closed = 0
    for run in runs:
        # Read again right before closing: a trial still stopping may have ended its run since the search above.
        if client.get_run(run.info.run_id).info.status != "RUNNING":
            continue
        client.set_tag(run.info.run_id, CLOSED_BY_TAG, reason)
        client.set_terminated(run.info.run_id, status="KILLED")
        closed += 1
    return closed




def tag_orphaned_trial_runs(tracking_uri: str, experiment_id: str, parent_run_id: str, trial_ids: set[str]) -> int:
    """Trial runs of this search whose trial the Tune experiment does not know get ``mritune.orphaned``.

    Only after a killed driver: a reused actor starts its next trial at once, and if the driver dies before its
    next experiment-state snapshot lists that trial, the resumed search never hears of it (its epochs are lost to
    Tune, and the searcher proposes a new trial instead). Its run keeps what it logged, ends KILLED, and says why.
    """
    from mlflow.tracking import MlflowClient


    client = MlflowClient(tracking_uri)
    runs = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")
    orphans = [run for run in runs if run.data.tags.get(TRIAL_ID_TAG) not in trial_ids]
    for run in orphans:
        client.set_tag(run.info.run_id, ORPHAN_TAG, "the driver died before Tune saved this trial; not resumed")
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="KILLED")
    return len(orphans)


def results_table(ranked: list[TrialScore], *, metric: str, floor: str | None = None) -> list[dict[str, Any]]:
    """One row per trial, best first (``ranking.rank_trials``): its score (and with ``floor``, the metric holding
    the score's real-vs-real floor, that floor from the same epoch), the epoch it comes from, its config."""
    return [
        {
            "trial_id": score.trial_id,
            "status": score.status,
            "epochs": score.epochs,
            metric: score.value,
            **({floor: score.metrics.get(floor)} if floor else {}),
            "best_epoch": score.epoch,
            **{f"config.{k}": v for k, v in score.config.items()},
        }
        for score in ranked
    ]


def log_search_summary(*, tracking_uri: str, parent_run_id: str, table: list[dict], metric: str, mode: str,
                       searcher_state: dict | None) -> None:
    """Results table (CSV), best config (YAML), convergence plot and the searcher's observations."""
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_csv(table, folder / "results.csv")
        client.log_artifact(parent_run_id, str(folder / "results.csv"))
        if searcher_state is not None:
            client.log_dict(parent_run_id, searcher_state, "searcher_observations.json")
        ranked = [row for row in table if row[metric] is not None]
        if ranked:
            best_config = {k[len("config."):]: v for k, v in ranked[0].items() if k.startswith("config.")}
            client.log_dict(parent_run_id, best_config, "best_config.yaml")
            client.log_metric(parent_run_id, f"best_{metric}", float(ranked[0][metric]))
            order = trials_in_start_order(table, trial_numbers(client, experiment_id, parent_run_id))
            _convergence_plot(order, metric=metric, mode=mode, path=folder / "convergence.png")
            client.log_artifact(parent_run_id, str(folder / "convergence.png"))
        client.log_metric(parent_run_id, "trials_total", len(table))
        client.log_metric(parent_run_id, "trials_errored", sum(row["status"] == "ERROR" for row in table))


def _write_csv(table: list[dict], path: Path) -> None:
    import csv

    columns: list[str] = []
    for row in table:
        columns += [key for key in row if key not in columns]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)


def trial_numbers(client, experiment_id: str, parent_run_id: str) -> dict[str, int]:
    """``trial id -> number`` (the order Tune started the trials in) from the search's trial runs."""
    numbers = {}
    for run in child_runs(client, experiment_id, parent_run_id):
        tags = run.data.tags
        if TRIAL_ID_TAG in tags and tags.get(TRIAL_NUMBER_TAG, "").isdigit():
            numbers[tags[TRIAL_ID_TAG]] = int(tags[TRIAL_NUMBER_TAG])
    return numbers


def trials_in_start_order(table: list[dict], numbers: dict[str, int]) -> list[dict]:
    """The table's rows in the order their trials started; a trial without a number (its run never opened) after
    the numbered ones, by id. Trial ids are random, so sorting on them alone shuffles the search."""
    return sorted(table, key=lambda row: (numbers.get(row["trial_id"], len(numbers) + 1), str(row["trial_id"])))


def _convergence_plot(ordered: list[dict], *, metric: str, mode: str, path: Path) -> None:
    """Best metric so far against trial index (``ordered``: the rows in start order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mritune.platform.tracking.ranking import best_so_far

    values = [row[metric] for row in ordered]
    best = dict(best_so_far(list(enumerate(values, start=1)), mode=mode))  # trial index -> best up to it
    indices = range(1, len(values) + 1)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(indices, [v if v is not None else float("nan") for v in values], "o", alpha=0.5, label="trial")
    axis.step(indices, [best.get(i, float("nan")) for i in indices], where="post", label="best so far")
    axis.set_xlabel("trial index")
    axis.set_ylabel(metric)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def trial_run_id(tracking_uri: str, experiment_id: str, parent_run_id: str, trial_id: str) -> str | None:
    from mlflow.tracking import MlflowClient

    from mritune.platform.tracking.trial_runs import find_trial_run

    run = find_trial_run(MlflowClient(tracking_uri), experiment_id, parent_run_id, trial_id)
    return run.info.run_id if run else None


def source_commit(folder: Path | None = None) -> str | None:
    """mritune's own source commit: that of the git checkout holding ``folder`` (default: this package's folder),
    or None when it is not one (an installed wheel), also when the folder merely sits inside some other
    repository (a venv in a project's checkout) without being tracked there. Never the folder the command runs in.
    """
    folder = folder or Path(__file__).resolve().parent
    if not folder.is_dir():
        return None
    try:
        tracked = _git(folder, "ls-files", "--", ".")
        commit = _git(folder, "rev-parse", "HEAD") if tracked else None
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.debug("no git commit recorded for the search (%s)", exc)
        return None
    return commit or None


def _git(folder: Path, *args: str) -> str | None:
    """A git command's output in ``folder``; None when git refuses (not a repository, no commit yet)."""
    out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=5, check=False)
    return out.stdout.strip() if out.returncode == 0 else None
