"""Run a search: data once on the driver, Ray (embedded or a cluster), MLflow parent run, Tuner, registry.

`run_search` and `resume_search` are the plain functions the CLI, the Ray Job entrypoint and the tests call.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mritune.deploy.tracking_uri import check_tracking_reachable, resolve_tracking_uri
from mritune.platform.infra import storage
from mritune.platform.spec.config import SearchSpec, parse_spec, spec_to_yaml
from mritune.platform.spec.search_folder import STATE_FILE, check_tune_state_whole, read_search_state
from mritune.platform.infra.storage import StorageLocation
from mritune.platform.tracking.trial_runs import MlflowTrialObserverFactory, ensure_experiment
from mritune.platform.infra.trial_speed import TrialSpeed, tune_environment
from mritune.trainables.errors import MissingInputError

DEFAULT_STORAGE_PATH = SearchSpec.model_fields["storage_path"].default  # ./ray_results

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchOutcome:
    name: str
    experiment_path: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    metric: str
    mode: str
    table: list[dict[str, Any]]  # one row per trial, best first
    registration: Any  # mritune.platform.registry.registration.Registration | None
    # The parent run's final status: FINISHED, or FAILED when no trial produced a usable score (all diverged).
    status: str = "FINISHED"
    status_reason: str | None = None
    reruns: Any = None  # mritune.platform.registry.rerun_summary.RerunSummary | None: the re-runs before registering
    # Where the search report was written (a local file: for URI storage a temporary folder, the report also being
    # the parent run's report/ artifacts); None: not written (drawing it failed, the log says why).
    report: str | None = None
    registry_enabled: bool = True  # the spec's registry.enabled: False, nothing was meant to be registered
    floor_metric: str | None = None  # the table's column of the metric's real-vs-real floor (Task.floor_metrics)


@dataclass(frozen=True)
class _SearchContext:
    spec: SearchSpec
    experiment_path: StorageLocation  # a local folder or a URI (platform/infra/storage.py)
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    verbose: bool = False  # Ray's and TensorFlow's own console output instead of mritune's progress lines
    rerun_progress: bool = True  # a line per re-run training as it ends
    # Read once per search, so the trainable, the TuneConfig and fit's environment agree.
    speed: TrialSpeed = field(default_factory=TrialSpeed.from_env)


def load_data(spec: SearchSpec):
    """The spec's dataset, decoded once on the driver (cached by fingerprint and image size)."""
    if spec.data.synthetic is not None:
        from mritune.trainables.data.synthetic import load_synthetic

        synth = spec.data.synthetic
        return load_synthetic(
            n=synth.n, size=synth.size, seed=synth.seed, image_size=spec.data.resolved_image_size,
            val_fraction=spec.data.val_fraction, test_fraction=spec.data.test_fraction,
        )
    from mritune.trainables.data.loading import load_dataset

    return load_dataset(
        spec.data.path,
        image_size=spec.data.resolved_image_size,
        val_fraction=spec.data.val_fraction,
        test_fraction=spec.data.test_fraction,
        seed=spec.data.split_seed,
        classes=spec.data.classes,
    )


def run_search(spec: SearchSpec, *, address: str | None = None, tracking_uri: str | None = None,
               verbose: bool = False, rerun_progress: bool = True) -> SearchOutcome:
    """Start a new search and run it to the end.

    The dataset is decoded once on this driver, Ray is joined (or started embedded), an MLflow parent run records
    the search, and a ``ray.tune.Tuner`` runs the trials; the best checkpoint is then evaluated on the test split
    and registered (unless ``spec.registry.enabled`` is false). The experiment folder is
    ``<spec.storage_path>/<spec.name>-<timestamp>``, which ``resume_search`` takes.

    Args:
        spec: A validated spec (``config.load_spec`` or ``config.parse_spec``).
        address: A Ray cluster (``HOST:PORT`` of the head's GCS, ``ray://...`` or ``auto``); None: ``RAY_ADDRESS``,
            else an embedded local Ray.
        tracking_uri: The MLflow store; None: the spec's ``tracking.uri``, else ``MLFLOW_TRACKING_URI``, else
            ``./mlruns.db``. A relative SQLite path is made absolute.
        verbose: Print Ray's progress tables and the trial workers' TensorFlow/MLflow start-up logs, instead of
            one line per finished trial and a summary every 30 s.
        rerun_progress: Print a line per re-run training as it ends (``mritune quickstart`` leaves them out: the
            summary after the search lists every re-run's scores).

    Returns:
        The experiment folder, the MLflow ids, the results table (best first) and the registration (or None).

    Raises:
        AccessDenied: ``storage_path`` cannot be created or written (read-only, full).
        TrackingServerUnreachable: An http(s) tracking server does not answer.
        FileNotFoundError: The dataset folder does not exist.
        ValueError: The dataset cannot be used, an address is malformed, the cluster lacks the resources a trial
            asks for, or a cluster of several nodes is given a local tracking store.
        ConnectionError: The Ray cluster cannot be reached or refuses the connection.

    Example:
        >>> from mritune.platform.spec.config import load_spec
        >>> outcome = run_search(load_spec("configs/classifier-quick.yaml", ["search.num_samples=4"]))  # doctest: +SKIP
        >>> outcome.table[0]["trial_id"], outcome.registration.alias  # doctest: +SKIP
    """
    from mritune.platform.views import search_views
    from mritune.platform.tracking import search_run

    # A relative SQLite path made absolute: trial processes started elsewhere must write the same file. A new
    # SQLite store is created on first use, so only a server is checked.
    location = storage.parse_location(spec.storage_path)
    storage.check_storage_usable(location)
    uri = resolve_tracking_uri(tracking_uri, spec.tracking.uri, absolute_sqlite=True)
    check_tracking_reachable(uri, sqlite_must_exist=False)
    dataset = load_data(spec)
    cluster = _connect_and_check(spec, address, uri, location, verbose=verbose)
    experiment_id = ensure_experiment(spec.experiment, uri)
    experiment_path = location.child(f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    parent_run_id = search_run.start_search_run(
        spec=spec, dataset=dataset, tracking_uri=uri, experiment_id=experiment_id, cluster=cluster
    )
    search_views.describe_started_search(spec, tracking_uri=uri, parent_run_id=parent_run_id)
    context = _SearchContext(spec, experiment_path, uri, experiment_id, parent_run_id, verbose=verbose,
                             rerun_progress=rerun_progress)
    _write_state(context)
    tuner = _build_tuner(context, dataset)
    return _fit_and_finish(context, tuner, dataset)


def resume_search(search: str, *, storage_path: str | None = None, overrides: tuple[str, ...] = (),
                  address: str | None = None, verbose: bool = False) -> SearchOutcome:
    """Continue an interrupted search: finished trials are kept, errored ones resume from their checkpoints.

    The spec, tracking URI and MLflow ids come from the experiment folder's ``mritune_search.json``; runs the
    interruption left open are closed, and the search's parent run is reopened.

    Args:
        search: The experiment folder; the search's spec file (its newest ``<storage_path>/<name>-<timestamp>``,
            storage_path from the spec); or a search name (its newest folder under ``storage_path``).
        storage_path: Where to look for a search given by name or spec; None: the spec's ``storage_path``, else
            the default ``./ray_results``.
        overrides: ``key=value`` overrides for a spec file, as given to the search (e.g. ``storage_path=...``).
        address: A Ray cluster, as for :func:`run_search`; None: ``RAY_ADDRESS``, else an embedded local Ray.
        verbose: As for :func:`run_search` (the trial workers' logs; Ray's tables are as the search left them).

    Returns:
        As :func:`run_search`.

    Raises:
        SpecError: The spec file, or the spec stored with the search, is not valid (nothing is started).
        FileNotFoundError: No such search folder, or it holds no Tune experiment state to resume.
        UserInputError: Tune's experiment state was cut short by the interruption and no whole copy of it was
            kept (Tune would start again from no trials).
        TrackingServerUnreachable: The search's http(s) tracking server does not answer.
        ValueError, ConnectionError: As for :func:`run_search`.

    Example:
        >>> outcome = resume_search("configs/classifier-quick.yaml")  # doctest: +SKIP
    """
    from ray import tune

    from mritune.platform.run.tune_state import restore_whole_tune_state
    from mritune.platform.tracking import search_run

    experiment_path = locate_search(search, storage_path=storage_path, overrides=overrides)
    state = read_search_state(experiment_path)
    spec = parse_spec(state["spec"], source=str(experiment_path.child(STATE_FILE)))
    uri = state["tracking_uri"]
    storage.check_storage_usable(experiment_path)
    check_tracking_reachable(uri, sqlite_must_exist=False)
    # Everything that can refuse the resume comes before the first change to the search's MLflow runs: a resume
    # that cannot go on leaves the parent run's status as the interruption left it.
    if not experiment_path.is_uri:
        restore_whole_tune_state(Path(experiment_path.value))
    check_tune_state_whole(experiment_path)
    if not tune.Tuner.can_restore(str(experiment_path)):
        raise MissingInputError(f"{experiment_path} holds no Tune experiment state to resume; start a new search")
    dataset = load_data(spec)
    _connect_and_check(spec, address, uri, experiment_path.parent, verbose=verbose)
    context = _SearchContext(spec, experiment_path, uri, state["experiment_id"], state["parent_run_id"],
                             verbose=verbose)
    tuner = tune.Tuner.restore(
        str(experiment_path),
        trainable=_trainable(context, dataset),
        param_space=param_space(spec),  # the searcher gets its space again; its observations come from disk
        resume_errored=True,
        restart_errored=False,
    )
    search_run.close_orphaned_runs(context.tracking_uri, context.experiment_id, context.parent_run_id)
    search_run.reopen_search_run(context.tracking_uri, context.parent_run_id)
    return _fit_and_finish(context, tuner, dataset)


def locate_search(search: str, *, storage_path: str | None = None,
                  overrides: tuple[str, ...] = ()) -> StorageLocation:
    """The experiment folder of a search given as its folder (or URI), its spec file or its name (see
    ``resume_search``); a spec's search is looked for under the spec's ``storage_path``."""
    direct = Path(search)
    if direct.suffix in (".yaml", ".yml") and direct.is_file():
        from mritune.platform.spec.config import load_spec

        spec = load_spec(direct, overrides)
        return find_experiment(spec.name, storage_path or spec.storage_path)
    return find_experiment(search, storage_path or DEFAULT_STORAGE_PATH)


def find_experiment(name_or_path: str, storage_path: str) -> StorageLocation:
    """A search folder given by path or URI, or the newest `<storage>/<name>-<timestamp>` for a name."""
    direct = storage.parse_location(name_or_path)
    if storage.is_file(direct.child(STATE_FILE)):
        return direct
    root = storage.parse_location(storage_path)
    candidates = [folder for folder in storage.folders_named(root, f"{name_or_path}-")
                  if storage.is_file(folder.child(STATE_FILE))]
    if not candidates:
        raise MissingInputError(
            f"no search named {name_or_path!r} under {root}; pass the search folder path "
            f"(it holds {STATE_FILE}), its spec file, or --storage-path"
        )
    return candidates[-1]


def _connect_and_check(spec: SearchSpec, address: str | None, uri: str, location: StorageLocation, *,
                       verbose: bool = False):
    from mritune.platform.infra.cluster import check_resources, connect_ray, require_remote_tracking
    from mritune.platform.views.console import worker_runtime_env

    cluster = connect_ray(address, runtime_env=worker_runtime_env(verbose=verbose),
                          logging_level=logging.INFO if verbose else logging.WARNING)
    check_resources(cpu=spec.resources.cpu, gpu=spec.resources.gpu, cluster=cluster)
    require_remote_tracking(uri, cluster)
    storage.require_shared_storage(location, shared=spec.storage_shared, cluster=cluster)
    return cluster


def _write_state(context: _SearchContext) -> None:
    state = {
        "spec": context.spec.model_dump(mode="json"),
        "tracking_uri": context.tracking_uri,
        "experiment_id": context.experiment_id,
        "parent_run_id": context.parent_run_id,
    }
    storage.write_text(context.experiment_path.child(STATE_FILE), json.dumps(state, indent=2))
    storage.write_text(context.experiment_path.child("spec.yaml"), spec_to_yaml(context.spec))


def _trainable(context: _SearchContext, dataset):
    from ray import tune

    from mritune.trainables.tune_trainables import make_trainable

    speed = context.speed
    observer_factory = MlflowTrialObserverFactory(
        tracking_uri=context.tracking_uri,
        experiment_id=context.experiment_id,
        parent_run_id=context.parent_run_id,
        search_name=context.spec.name,
        background=speed.background_logging,
        perturbed=context.spec.perturbed,
    )
    function = make_trainable(context.spec.task, observer_factory=observer_factory, speedups=speed.fast_inference)
    resources = {"cpu": context.spec.resources.cpu, "gpu": context.spec.resources.gpu}
    return tune.with_resources(tune.with_parameters(function, data=dataset), resources)


def build_spec_searcher(spec: SearchSpec, *, max_concurrent: int | None):
    """The spec's searcher (``search/factory.py``), as the search and ``mritune search --dry-run`` build it; a
    multi-fidelity one (mobster) also gets the scheduler's ASHA settings. Under pbt/pb2: Ray's basic variant
    generator, seeded (the one search algorithm Ray's PopulationBasedTraining accepts; the spec says ``random``)."""
    from mritune.search.factory import build_searcher, build_variant_generator, with_scheduler_settings

    if spec.scheduler.population_based:
        return build_variant_generator(seed=spec.search.seed, max_concurrent=max_concurrent,
                                       points_to_evaluate=spec.search.points_to_evaluate)
    return build_searcher(
        spec.search.algorithm,
        metric=spec.metric,
        mode=spec.mode,
        seed=spec.search.seed,
        max_concurrent=max_concurrent,
        points_to_evaluate=spec.search.points_to_evaluate,
        **with_scheduler_settings(spec.search.algorithm, spec.search.options, max_t=spec.epochs,
                                  grace_period=spec.scheduler.grace_period,
                                  reduction_factor=spec.scheduler.reduction_factor),
    )


def build_spec_scheduler(spec: SearchSpec, *, on_exploit=None):
    """The spec's scheduler (``search/factory.py``) as the search builds it; pbt/pb2 get the searched domains, the
    task's perturbable settings and ``on_exploit`` (the driver's lineage recorder)."""
    from mritune.search.factory import build_scheduler
    from mritune.search.space_yaml import parse_space
    from mritune.trainables.tasks import get_task

    population = {}
    if spec.scheduler.population_based:
        population = {"domains": parse_space(spec.search.space), "perturbable": get_task(spec.task).perturbable,
                      "on_exploit": on_exploit}
    return build_scheduler(spec.scheduler.name, max_t=spec.epochs, metric=spec.metric, mode=spec.mode,
                           **spec.scheduler.settings(), **population)


def param_space(spec: SearchSpec) -> dict:
    """Fixed settings and the searched domains, as the Tuner (and the dry run) get them."""
    from mritune.search.space_yaml import parse_space

    return {**spec.fixed_config(), **parse_space(spec.search.space)}


def _build_tuner(context: _SearchContext, dataset):
    from ray import tune

    from mritune.platform.tracking.lineage import LineageRecorder
    from mritune.platform.tracking.ranking import checkpoint_config
    from mritune.platform.views import search_views
    from mritune.platform.tracking.run_callbacks import TrialRunCloser

    spec = context.spec
    searcher = build_spec_searcher(spec, max_concurrent=spec.search.max_concurrent)
    scheduler = build_spec_scheduler(spec, on_exploit=LineageRecorder(
        tracking_uri=context.tracking_uri, experiment_id=context.experiment_id,
        parent_run_id=context.parent_run_id))
    closer = TrialRunCloser(
        tracking_uri=context.tracking_uri,
        experiment_id=context.experiment_id,
        parent_run_id=context.parent_run_id,
        epochs=spec.epochs,
        scheduler=spec.scheduler.name,
    )
    return tune.Tuner(
        _trainable(context, dataset),
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=spec.search.num_samples,
            time_budget_s=spec.search.time_budget_s,
            # Every trial asks for the same resources, so one warm worker process can run trial after trial.
            reuse_actors=context.speed.reuse_actors,
        ),
        run_config=tune.RunConfig(
            name=context.experiment_path.name,
            storage_path=str(context.experiment_path.parent),  # a local folder or a pyarrow URI
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
            checkpoint_config=checkpoint_config(metric=spec.metric, mode=spec.mode,
                                                population=spec.scheduler.population_based),
            callbacks=[closer, *_state_keeper(context.experiment_path), *search_views.search_callbacks(
                spec=spec, tracking_uri=context.tracking_uri, experiment_id=context.experiment_id,
                parent_run_id=context.parent_run_id, verbose=context.verbose)],
            verbose=1 if context.verbose else 0,
        ),
    )


def _state_keeper(experiment_path: StorageLocation) -> list:
    """A whole copy of Tune's experiment state for a local search folder (platform/run/tune_state.py)."""
    from mritune.platform.run.tune_state import TuneStateKeeper

    return [] if experiment_path.is_uri else [TuneStateKeeper(folder=Path(experiment_path.value))]


def _fit_and_finish(context: _SearchContext, tuner, dataset) -> SearchOutcome:
    """Run the Tuner, then summarise and register. The parent run always ends with a true status: FINISHED,
    KILLED on Ctrl-C, FAILED (with the error as a tag) on any other error; trial runs left RUNNING end too.
    Then the run's description and the report (search_views), drawn from the ended runs."""
    from mritune.platform.views import search_views
    from mritune.platform.tracking import search_run

    try:
        with tune_environment(context.speed):
            results = tuner.fit()
        outcome = _summarise_and_register(context, results, dataset)
    except KeyboardInterrupt:
        _end_unfinished_search(context, status="KILLED", reason="interrupted")
        raise
    except BaseException as exc:
        _end_unfinished_search(context, status="FAILED", reason=f"{type(exc).__name__}: {exc}")
        raise
    search_run.end_search_run(context.tracking_uri, context.parent_run_id, status=outcome.status,
                                 reason=outcome.status_reason)
    report = search_views.finish_search_views(context.spec, outcome)
    return dataclasses.replace(outcome, report=None if report is None else str(report))


def _summarise_and_register(context: _SearchContext, results, dataset) -> SearchOutcome:
    from mritune.platform.registry import rerun_tracking
    from mritune.platform.registry.registration import register_best
    from mritune.platform.tracking import search_run
    from mritune.platform.tracking.ranking import rank_trials
    from mritune.platform.views import search_views

    spec = context.spec
    # A run still RUNNING was stopped without a callback (time budget). Its trial may still be ending it: whichever
    # writes last, the trial's own ending wins (trial_runs.MlflowTrialObserver drops the driver's closed_by mark).
    search_run.close_orphaned_runs(context.tracking_uri, context.experiment_id, context.parent_run_id,
                                      reason="search_end")
    ranked = rank_trials(results, metric=spec.metric, mode=spec.mode)
    search_run.tag_orphaned_trial_runs(context.tracking_uri, context.experiment_id, context.parent_run_id,
                                          {score.trial_id for score in ranked})
    floor_metric = search_views.floor_metric(spec)
    table = search_run.results_table(ranked, metric=spec.metric, floor=floor_metric)
    search_run.log_search_summary(
        tracking_uri=context.tracking_uri, parent_run_id=context.parent_run_id, table=table, metric=spec.metric,
        mode=spec.mode, searcher_state=_searcher_state(context.experiment_path),
    )
    if spec.scheduler.population_based:
        from mritune.platform.tracking.lineage import log_best_schedule

        log_best_schedule(context.tracking_uri, context.parent_run_id, ranked)
    registration, reruns = None, None
    if spec.registry.enabled:
        reruns = _rerun_best(context, ranked, dataset)
        registration = register_best(
            spec=spec, ranked=ranked, tracking_uri=context.tracking_uri, experiment_id=context.experiment_id,
            parent_run_id=context.parent_run_id, dataset=dataset, reruns=reruns,
        )
        if reruns is not None and registration is not None:
            reruns = reruns.with_decision(registration.decision)
            rerun_tracking.log_summary(context.tracking_uri, context.parent_run_id, reruns)
    usable = any(score.registrable for score in ranked)
    errored = sum(score.status == "ERROR" for score in ranked)
    return SearchOutcome(
        name=spec.name, experiment_path=str(context.experiment_path), tracking_uri=context.tracking_uri,
        experiment_id=context.experiment_id, parent_run_id=context.parent_run_id, metric=spec.metric,
        mode=spec.mode, table=table, registration=registration, reruns=reruns,
        registry_enabled=spec.registry.enabled, floor_metric=floor_metric, status="FINISHED" if usable else "FAILED",
        status_reason=None if usable else (f"no trial produced a usable {spec.metric} ({errored} of {len(ranked)} "
                                           "errored, e.g. diverged); nothing registered"),
    )


def _rerun_best(context: _SearchContext, ranked, dataset):
    """The spec's re-runs of the best configurations (platform/registry/rerun.py), logged on the parent run before the
    registry uses them; None when they are off or no trial is registrable."""
    from mritune.platform.registry import rerun
    from mritune.platform.registry import rerun_tracking

    reruns = rerun.rerun_best(spec=context.spec, ranked=ranked, dataset=dataset,
                              experiment_path=context.experiment_path, progress=context.rerun_progress)
    if reruns is not None:
        rerun_tracking.log_reruns(context.tracking_uri, context.parent_run_id, reruns)
    return reruns


def _end_unfinished_search(context: _SearchContext, *, status: str, reason: str) -> None:
    """Close the search's runs after an error; a failure here is logged, never raised over the original error."""
    from mritune.platform.tracking import search_run

    try:
        search_run.close_orphaned_runs(context.tracking_uri, context.experiment_id, context.parent_run_id,
                                          reason=f"search_{status.lower()}")
        search_run.end_search_run(context.tracking_uri, context.parent_run_id, status=status, reason=reason)
    except Exception:  # the tracking server may be what failed: say so, and let the original error propagate
        logger.exception("could not mark the search run %s %s", context.parent_run_id, status)


def _searcher_state(experiment_path: StorageLocation | Path) -> dict | None:
    """The searcher's observations as Tune last saved them (mritune's searchers save a JSON state dict)."""
    if not isinstance(experiment_path, StorageLocation):
        experiment_path = storage.parse_location(str(experiment_path))
    saved = storage.newest_file(experiment_path, "searcher-state-")
    if saved is None:
        logger.info("no searcher state in %s: the search summary has no searcher observations", experiment_path)
        return None
    try:
        return json.loads(storage.read_bytes(saved))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # Not one of mritune's searchers (those save JSON): nothing readable to log.
        logger.warning("searcher state %s is not JSON; the search summary has no searcher observations", saved)
        return None
