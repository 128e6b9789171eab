"""Re-run the search's best configurations from scratch on new seeds before one is registered.

A search picks the maximum of many noisy validation scores, so the winner's score is biased upward (the winner's
curse). After the trials, the k best configurations by the search's one ranking (``platform/tracking/ranking.py``) are
trained again from scratch on n new seeds each (spec ``promotion: {rerun_top_k, rerun_seeds}``), each to its
trial's best epoch (the training stops there, ``until_epoch``; the config's ``epochs`` stays the trial's, so an
epoch-based learning-rate schedule runs as it did in the trial), as Ray tasks on the search's cluster with the
trials' resources, at most ``search.max_concurrent`` at a time. Each re-run is scored on the validation split (the
search metric at its last epoch) and on the test split (the task's evaluator), and scores its gate metric on the
search's shared resamples of the test images for the bootstrap interval (``platform/registry/intervals.py``). Its
checkpoint folder is kept in the search folder (``<experiment>/reruns/<trial>-seed<seed>/``, local or a URI,
reachable from every node like the trials'), so the driver can register whichever re-run is chosen
(``platform/registry/rerun_summary.py``).

Under a population-based scheduler (pbt, pb2) a trial's best checkpoint was trained by a schedule of configs, not
one: its lineage copied other trials' weights and perturbed hyperparameters on the way. Its re-run replays that
schedule (the checkpoint's ``schedule.json``, ``trainables/schedule.py``): from scratch on the new seed, each
stretch of epochs with the config that trained it, each stage resuming from the previous stage's checkpoint, as Ray's
``PopulationBasedTrainingReplay`` replays a PBT trial. What a re-run measures is then the schedule's worth on new
seeds, not the luck of the population that found it.

A re-run that diverges on its new seed (a ``MrituneUserError`` inside the task) or whose worker is lost is recorded
with its error, and its configuration is not chosen; any other exception is a bug and ends the search with its
traceback.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from mritune.platform.registry.rerun_summary import ConfigReruns, RerunResult, RerunSummary, summarise
from mritune.platform.infra.storage import StorageLocation

if TYPE_CHECKING:
    from mritune.platform.spec.config import SearchSpec
    from mritune.platform.tracking.ranking import TrialScore
    from mritune.trainables.schedule import Stage

RERUNS_FOLDER = "reruns"  # inside the search folder
EVALUATION_FOLDER = "test_evaluation"  # inside each re-run's checkpoint folder: the evaluator's plots and report
_SEED_SALT = 22  # keeps re-run seeds apart from other seeds derived from the search's seed

logger = logging.getLogger(__name__)


def rerun_seeds(count: int, *, search_seed: int | None, avoid: set[int] = frozenset(), salt: int = _SEED_SALT
                ) -> tuple[int, ...]:
    """``count`` distinct training seeds derived from the search's seed, none of them in ``avoid`` (the trials'
    own seeds): the same search re-runs on the same seeds."""
    state = np.random.SeedSequence([search_seed or 0, salt]).generate_state(count + len(avoid) + 8)
    seeds: list[int] = []
    for value in (int(v % (2**31 - 1)) for v in state):
        if value not in avoid and value not in seeds:
            seeds.append(value)
    return tuple(seeds[:count])


def rerun_best(*, spec: "SearchSpec", ranked: Sequence["TrialScore"], dataset, experiment_path: StorageLocation,
               echo: Callable[[str], None] | None = None, progress: bool = True) -> RerunSummary | None:
    """Re-run the spec's ``promotion.rerun_top_k`` best registrable trials on ``rerun_seeds`` new seeds each.

    Args:
        spec: The search's spec (its promotion, resources, concurrency and task).
        ranked: The search's trials, best first (``ranking.rank_trials``).
        dataset: The search's dataset (put into Ray's object store once more).
        experiment_path: The search folder; re-run checkpoints go under its ``reruns/``.
        echo: Where the progress lines go (None: ``typer.echo``).
        progress: A line per training as it ends; False: only the line that says the re-runs start.

    Returns:
        The summary, or None when re-runs are off or no trial is registrable.

    Raises:
        ray.exceptions.RayTaskError: A re-run hit a bug (not a divergence).

    Example:
        >>> summary = rerun_best(spec=spec, ranked=ranked, dataset=data, experiment_path=path)  # doctest: +SKIP
        >>> summary.chosen_config.trial_id, summary.interval  # doctest: +SKIP
    """
    from mritune.platform.registry.intervals import resample_indices
    from mritune.trainables.tasks import get_task

    promotion = spec.promotion
    top = [score for score in ranked if score.registrable][:promotion.rerun_top_k]
    if not promotion.reruns_enabled or not top:
        return None
    task = get_task(spec.task)
    avoid = {int(score.config.get("seed", 0)) for score in top}
    seeds = rerun_seeds(promotion.rerun_seeds, search_seed=spec.search.seed, avoid=avoid)
    resampler = task.gate_resampler(dataset, int(spec.fixed_config()["image_size"]))
    indices = (None if resampler is None
               else resample_indices(resampler.n_images, resampler.resamples, seed=spec.search.seed or 0))
    started = time.monotonic()
    echo = echo or _typer_echo
    what = "the best configuration" if len(top) == 1 else f"the {len(top)} best configurations"
    echo(f"Re-running {what} on {len(seeds)} new seeds each "
         f"({len(top) * len(seeds)} trainings from scratch, to each trial's best epoch)")
    results = train_on_seeds(spec=spec, dataset=dataset, jobs=[(score, seed) for score in top for seed in seeds],
                             indices=indices, destination=experiment_path.child(RERUNS_FOLDER),
                             echo=echo if progress else _discard)
    configs = [_config_reruns(rank, score, spec, [r for r in results if r.trial_id == score.trial_id])
               for rank, score in enumerate(top, start=1)]
    return summarise(configs=configs, metric=spec.metric, mode=spec.mode, gate_metric=task.gate_metric,
                     gate_mode=task.gate_mode, seeds=seeds, n_test_images=0 if resampler is None else resampler.n_images,
                     image_resamples=0 if indices is None else len(indices), seconds=time.monotonic() - started,
                     bootstrap_seed=spec.search.seed or 0)


def train_on_seeds(*, spec: "SearchSpec", dataset, jobs: Sequence[tuple["TrialScore", int]], indices,
                   destination: StorageLocation, echo: Callable[[str], None] | None = None) -> list[RerunResult]:
    """Train each ``(trial, seed)`` of ``jobs`` from scratch to the trial's best epoch as a Ray task with the
    trials' resources, at most ``search.max_concurrent`` at once; results in ``jobs``' order.

    ``indices`` are the shared test-image resamples (``intervals.resample_indices``) or None; checkpoints go to
    ``destination/<trial>-seed<seed>``. The benchmark (``benchmarks/winners_curse.py``) calls this for fresh seeds.
    """
    import ray

    echo = echo or _typer_echo
    data_ref = ray.put(dataset)
    indices_ref = ray.put(indices)  # up to a megabyte, shared by every task
    remote = ray.remote(_train_and_score).options(
        num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu, max_retries=spec.failure.max_failures)
    limit = spec.search.max_concurrent or len(jobs)
    pending: dict[Any, int] = {}
    results: dict[int, RerunResult] = {}
    queue = list(enumerate(jobs))
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                index, (score, seed) = queue.pop(0)
                arguments = _task_arguments(spec, score, seed, destination)
                pending[remote.remote(**arguments, data=data_ref, indices=indices_ref)] = index
            ready, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ready[0])
            score, seed = jobs[index]
            results[index] = _result_or_lost(ready[0], score, seed)
            echo(_progress_line(results[index], len(results), len(jobs), spec.metric))
    except BaseException:
        for ref in pending:  # Ctrl-C or a bug: the other re-runs stop too
            ray.cancel(ref, force=True)
        raise
    return [results[index] for index in range(len(jobs))]


def _task_arguments(spec: "SearchSpec", score: "TrialScore", seed: int, destination: StorageLocation
                    ) -> dict[str, Any]:
    from mritune.platform.infra.trial_speed import TrialSpeed
    from mritune.trainables.schedule import Stage

    stages = [Stage(config={**score.config, "seed": seed}, until_epoch=int(score.epoch))]
    if spec.scheduler.population_based:
        stages = schedule_stages(score, seed=seed) or stages
    return {"task": spec.task, "trial_id": score.trial_id, "stages": stages, "metric": spec.metric,
            "cpus": spec.resources.cpu, "destination": destination.child(f"{score.trial_id}-seed{seed}"),
            "speedups": TrialSpeed.from_env().fast_inference}


def schedule_stages(score: "TrialScore", *, seed: int) -> list["Stage"]:
    """The stages that replay the hyperparameter schedule of ``score``'s checkpoint on ``seed``, to its epoch
    (``schedule.replay_stages``); empty when the checkpoint holds no schedule (then its config is re-run)."""
    from mritune.platform.tracking.lineage import checkpoint_schedule
    from mritune.trainables.schedule import replay_stages

    segments = checkpoint_schedule(score.checkpoint)
    if not segments:
        logger.warning("trial %s's checkpoint has no readable schedule: its re-runs train its last config "
                       "throughout", score.trial_id)
        return []
    return replay_stages(segments, until_epoch=int(score.epoch), overrides={"seed": seed})


def _result_or_lost(ref, score: "TrialScore", seed: int) -> RerunResult:
    """The task's result; a lost worker or node (after Ray's retries) is a failed re-run, a bug is raised."""
    import ray
    from ray.exceptions import RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError:
        raise
    except ray.exceptions.RayError as exc:
        logger.warning("re-run of trial %s on seed %d was lost: %s", score.trial_id, seed, exc)
        return RerunResult(trial_id=score.trial_id, seed=seed, epoch=int(score.epoch), val=None, test=None,
                           error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _config_reruns(rank: int, score: "TrialScore", spec: "SearchSpec", results: list[RerunResult]) -> ConfigReruns:
    searched = {key: score.config[key] for key in spec.search.space if key in score.config}
    return ConfigReruns(rank=rank, trial_id=score.trial_id, trial_value=float(score.value), epoch=int(score.epoch),
                        searched=searched, results=tuple(results))


def _progress_line(result: RerunResult, done: int, total: int, metric: str) -> str:
    what = (f"FAILED ({result.error})" if not result.ok
            else f"{metric} {result.val:.4f}, test {result.test:.4f}")
    epochs = f"{result.epoch} epoch" + ("" if result.epoch == 1 else "s")
    return f"[re-run {done}/{total}] trial {result.trial_id} seed {result.seed}, {epochs}: {what} ({result.seconds:.0f} s)"


def _discard(line: str) -> None:
    """An echo that prints nothing (re-runs without per-training lines)."""


def _typer_echo(line: str) -> None:
    import typer

    typer.echo(line)


def _train_and_score(*, task: str, trial_id: str, stages: Sequence["Stage"], data, metric: str, cpus: float,
                     indices, destination: StorageLocation, speedups: bool) -> RerunResult:
    """Inside a Ray worker: train through ``stages`` (one, or a replayed schedule's, each resumed from the one
    before, each stopped at its ``until_epoch``), evaluate on the test split, score the resamples, store the
    checkpoint."""
    from mritune.platform.infra import storage
    from mritune.trainables.errors import MrituneUserError
    from mritune.trainables.evaluation import evaluate_checkpoint
    from mritune.trainables.runtime import configure_runtime, free_keras_state
    from mritune.trainables.schedule import stages_schedule, write_schedule
    from mritune.trainables.tasks import get_task

    started = time.monotonic()
    free_keras_state()  # a reused worker process: nothing of the previous re-run survives
    configure_runtime(cpus=cpus, speedups=speedups)
    workdir = Path(tempfile.mkdtemp(prefix="mritune-rerun-"))
    reports = []
    config = stages[-1].config
    seed, epoch = int(config["seed"]), stages[-1].until_epoch
    try:
        try:
            train, resume_from = get_task(task).training_function(), None
            for stage in stages:
                train(stage.config, data, reports.append, resume_from=resume_from, workdir=str(workdir / "run"),
                      evaluate_test=False, until_epoch=stage.until_epoch)
                resume_from = reports[-1].checkpoint_dir
            folder = Path(reports[-1].checkpoint_dir)
            # The re-run's checkpoint says which configs trained it, as a trial's does (kept, and registered).
            write_schedule(folder, stages_schedule(list(stages), trial_id=f"{trial_id}-seed{seed}"))
            evaluation = evaluate_checkpoint(folder, data, out_dir=folder / EVALUATION_FOLDER)
        except MrituneUserError as exc:  # e.g. diverged on this seed: a result, not a crash
            return RerunResult(trial_id=trial_id, seed=seed, epoch=epoch, val=None, test=None,
                               seconds=time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")
        gate_metric = get_task(task).gate_metric
        resampler = get_task(task).gate_resampler(data, int(config["image_size"]))
        resampled = (() if resampler is None or indices is None
                     else tuple(float(resampler(evaluation.outputs, row)) for row in indices))
        storage.upload_folder(folder, destination)
        reported = {key: float(value) for key, value in reports[-1].metrics.items()
                    if isinstance(value, (int, float)) and np.isfinite(value)}
        return RerunResult(trial_id=trial_id, seed=seed, epoch=epoch, val=reported.get(metric),
                           test=float(evaluation.metrics[gate_metric]),
                           metrics={**reported, **{k: float(v) for k, v in evaluation.metrics.items()}},
                           resampled=resampled, checkpoint=destination.value, seconds=time.monotonic() - started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
