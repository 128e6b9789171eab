"""The task registry: what the platform decides per task (classifier, DCGAN), one entry per task.

Each task package (``trainables/classifier/``, ``trainables/dcgan/``) registers its :class:`Task` when it is
imported; the registry imports the built-in task packages on first lookup. The spec schema, ``mritune train``,
the Tune trainables, the test evaluation and the registry's promotion gate all read these entries, so a third
task is one more package with one ``register_task`` call (and a line in ``_BUILTIN_TASK_PACKAGES``).

More task packages (outside mritune, e.g. ``benchmarks/replay_task.py``) are named in the environment variable
``MRITUNE_TASK_PACKAGES`` (comma-separated importable modules), read on every lookup, so the trial workers, which
inherit the driver's environment, know the same tasks as the driver.

Entries are cheap to build: what imports TensorFlow (the training function, the checkpoint evaluator) is held as
a ``"module:attribute"`` reference and imported only when called, so validating a spec stays fast.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping
from mritune.trainables.errors import UserInputError

Direction = Literal["min", "max"]

# Imported (in this order) before the first lookup, so every built-in task has registered itself.
_BUILTIN_TASK_PACKAGES = ("mritune.trainables.classifier", "mritune.trainables.dcgan")
EXTRA_TASK_PACKAGES_ENV = "MRITUNE_TASK_PACKAGES"  # more task modules to import, comma-separated
_TASKS: dict[str, "Task"] = {}


@dataclass(frozen=True, kw_only=True)
class Task:
    """One trainable task and every per-task decision the rest of mritune reads.

    Attributes:
        name: The task's name in specs and on the command line (``task: classifier``).
        config_class: Its hyperparameter dataclass, with ``from_dict``/``to_dict`` (validates on construction).
        train: ``"module:function"`` of the training, ``train(config, data, report, *, resume_from, workdir,
            evaluate_test, until_epoch)`` returning a ``TrainingResult``; ``until_epoch`` (None: the config's
            ``epochs``) stops it early without changing ``epochs``, its schedule's horizon (re-runs pass it).
        evaluate_checkpoint: ``"module:function"`` of the test-split evaluation of a checkpoint folder,
            ``evaluate(folder, state, data, out_dir) -> Evaluation``.
        epoch_metrics: The metrics a trial reports every epoch (what a searcher and ASHA may use), in the order
            error messages list them, each with the direction that is better.
        search_metric: The default search metric (one of ``epoch_metrics``); its direction is the default mode.
        gate_metric: The test-split metric the promotion gate compares.
        gate_mode: Whether a higher (``max``) or lower (``min``) ``gate_metric`` is better.
        progress_metrics: What ``mritune train`` prints after each epoch.
        model_name: The registered model's default name.
        model_files: The Keras files every checkpoint holds; the first is the model that is evaluated, logged
            and registered.
        test_resampler: ``"module:function"`` of ``(data, image_size) -> GateResampler``
            (``trainables/evaluation.py``): the gate metric on resamples of the test images, for the bootstrap
            interval of the platform's re-runs. None: the task's versions carry no interval.
        model_logging: ``"module:attribute"`` of how a checkpoint becomes a registered MLflow pyfunc (an object
            with ``fit_guard`` and ``log``, ``deploy/task_logging.py``; named, not imported: trainables may not
            import deploy). None: its models cannot be registered (the spec schema then needs
            ``registry.enabled: false``).
        floor_metrics: A score metric -> the metric that holds its floor: what real images score on it against
            the same held-out images (the DCGAN's distances: ``swd`` -> ``swd_floor``, ``test_fd`` ->
            ``test_fd_floor``), for scores that mean nothing alone. The one place every view (console, search
            report, run and version descriptions) reads which floor to show beside a score (``floor_of``).
        perturbable: The settings a resumed training applies to the checkpoint it loads (a learning rate set on
            the loaded optimizer, a batch size the next epoch uses), so a population-based scheduler (pbt, pb2)
            may change them between epochs; every other setting stays as the checkpoint's training had it.
    """

    name: str
    config_class: type
    train: str
    evaluate_checkpoint: str
    epoch_metrics: Mapping[str, Direction]
    search_metric: str
    gate_metric: str
    gate_mode: Direction
    progress_metrics: tuple[str, ...]
    model_name: str
    model_files: tuple[str, ...]
    test_resampler: str | None = None
    model_logging: str | None = None
    floor_metrics: Mapping[str, str] = field(default_factory=dict)
    perturbable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.search_metric not in self.epoch_metrics:
            raise ValueError(f"task {self.name!r}: search_metric {self.search_metric!r} is not in epoch_metrics")
        floors = set(self.floor_metrics.values())
        if self.search_metric in floors or self.gate_metric in floors:
            raise ValueError(f"task {self.name!r}: a floor metric cannot be the search or gate metric")
        unreported = [floor for metric, floor in self.floor_metrics.items()
                      if metric in self.epoch_metrics and floor not in self.epoch_metrics]
        if unreported:
            raise ValueError(f"task {self.name!r}: floor metrics {unreported} of epoch metrics are not in "
                             "epoch_metrics (a floor is reported beside its score)")
        if not self.model_files:
            raise ValueError(f"task {self.name!r}: model_files must name at least the model file")
        import dataclasses

        unknown = sorted(set(self.perturbable) - {f.name for f in dataclasses.fields(self.config_class)})
        if unknown:
            raise ValueError(f"task {self.name!r}: perturbable setting {unknown[0]!r} is not a config field")

    @property
    def search_mode(self) -> Direction:
        """The default search mode: the direction of ``search_metric``."""
        return self.epoch_metrics[self.search_metric]

    def floor_of(self, metric: str) -> str | None:
        """The metric holding ``metric``'s real-vs-real floor, or None when it has none (``floor_metrics``)."""
        return self.floor_metrics.get(metric)

    @property
    def model_file(self) -> str:
        """The checkpoint file holding the model that is evaluated, logged and registered."""
        return self.model_files[0]

    def training_function(self) -> Callable[..., Any]:
        """The training function (imports the task's training module, and with it Keras, on first call)."""
        return _resolve(self.train)

    def checkpoint_evaluator(self) -> Callable[..., Any]:
        """The test-split evaluator of a checkpoint folder (imports Keras on first call)."""
        return _resolve(self.evaluate_checkpoint)

    def pyfunc_logging(self) -> Any:
        """The task's ``model_logging`` entry (imports its module, which is cheap: the model code loads when called).

        Raises:
            UserInputError: The task has none, or its reference names nothing importable.
        """
        if self.model_logging is None:
            raise UserInputError(f"the {self.name} task has no model logger (Task.model_logging), so its models "
                                 "cannot be registered")
        try:
            return _resolve(self.model_logging)
        except (ImportError, AttributeError) as exc:
            raise UserInputError(f"the {self.name} task's model logger {self.model_logging!r} cannot be "
                                 f"loaded: {exc}") from None

    def gate_resampler(self, data: Any, image_size: int) -> Any:
        """The task's ``GateResampler`` for ``data``'s test split at ``image_size``, or None if it has none."""
        return _resolve(self.test_resampler)(data, image_size) if self.test_resampler else None


def register_task(task: Task) -> Task:
    """Add ``task`` to the registry and return it; registering the same entry again is a no-op.

    Raises:
        ValueError: Another, different task is registered under the same name.
    """
    current = _TASKS.get(task.name)
    if current is not None and current != task:
        raise ValueError(f"a different task named {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def task_names() -> tuple[str, ...]:
    """The registered tasks' names, sorted (the order messages list them in, whatever the import order)."""
    _load_builtin_tasks()
    return tuple(sorted(_TASKS))


def get_task(name: str) -> Task:
    """The registered task called ``name``.

    Raises:
        ValueError: No task of that name; the message lists the registered ones.
    """
    _load_builtin_tasks()
    if name not in _TASKS:
        raise UserInputError(f"unknown task {name!r}; choose one of {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


def _load_builtin_tasks() -> None:
    for package in _BUILTIN_TASK_PACKAGES:
        importlib.import_module(package)
    for package in (name.strip() for name in os.environ.get(EXTRA_TASK_PACKAGES_ENV, "").split(",")):
        if not package:
            continue
        try:
            importlib.import_module(package)
        except ModuleNotFoundError as exc:
            if exc.name != package:
                raise  # the package exists but one of its imports is missing: a bug there, keep the traceback
            raise UserInputError(f"{EXTRA_TASK_PACKAGES_ENV} names {package!r}, which Python cannot import; "
                                 "fix the name or add its folder to PYTHONPATH") from None


def _resolve(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)
