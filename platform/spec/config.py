"""The search spec: a YAML file validated by pydantic before anything starts.

Unknown keys and bad values are rejected with the dotted path of the bad key (``search.space.dropout: ...``).
``--set key.path=value`` overrides are applied to the raw YAML before validation, values parsed as YAML.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mritune.platform.spec.overrides import apply_settings, setting_keys
from mritune.search.factory import (SCHEDULER_KINDS, SCHEDULERS, SEARCHER_OPTIONS, SEARCHERS,
                                    check_scheduler_settings, check_searcher_for_scheduler, check_searcher_options)
from mritune.trainables.errors import MissingInputError, UserInputError
from mritune.trainables.tasks import get_task, task_names

logger = logging.getLogger(__name__)


# The spec's promotion.rule (platform/registry/promotion.py applies them).
INTERVAL_RULE = "interval"  # a challenger's interval must clear the champion's mean
SINGLE_RULE = "single"  # the two versions' single test numbers (mritune before re-runs)
RULES = (INTERVAL_RULE, SINGLE_RULE)


class SpecError(UserInputError):
    """A search spec that cannot be used; the message names the key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticData(_Strict):
    n: int = Field(default=640, ge=32, le=200_000)
    size: int = Field(default=64, ge=32, le=512)
    seed: int = 0


class DataSpec(_Strict):
    path: str | None = None
    synthetic: SyntheticData | None = None
    image_size: int | None = Field(default=None, ge=16, le=512)
    val_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    split_seed: int = 0
    # Class names in the model's output order, for a dataset laid out as <path>/<class>/* (discovery.py);
    # None: the Kaggle layouts and their four classes.
    classes: list[str] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "DataSpec":
        if (self.path is None) == (self.synthetic is None):
            raise ValueError("give exactly one of data.path (a dataset folder) or data.synthetic ({n, size, seed})")
        if self.classes is not None:
            if self.synthetic is not None:
                raise ValueError("data.classes names the class folders of data.path; the synthetic data has its own")
            from mritune.trainables.data.classes import ClassList

            ClassList(tuple(self.classes))  # two or more distinct names, else a one-line ValueError
        return self

    @property
    def resolved_image_size(self) -> int:
        if self.image_size is not None:
            return self.image_size
        return self.synthetic.size if self.synthetic is not None else 128


class SearchSection(_Strict):
    algorithm: Literal[SEARCHERS] = "gpyopt"  # the searchers search/factory.py registers
    options: dict[str, Any] = Field(default_factory=dict)
    num_samples: int = Field(default=10, ge=1, le=10_000)
    max_concurrent: int | None = Field(default=None, ge=1, le=1024)
    metric: str | None = None
    mode: Literal["min", "max"] | None = None
    space: dict[str, Any] = Field(default_factory=dict)
    points_to_evaluate: list[dict[str, Any]] | None = None
    seed: int | None = 0
    # Wall-clock budget of the whole search (Ray Tune's time_budget_s): running trials are stopped when it ends.
    time_budget_s: float | None = Field(default=None, gt=0)


class SchedulerSection(_Strict):
    """One section for every scheduler; each reads only its own settings (search/factory.py SCHEDULER_KINDS), and
    a setting given for a scheduler that does not read it is refused."""

    name: Literal[SCHEDULERS] = "asha"
    max_t: int | None = Field(default=None, ge=1, le=100_000)
    # asha
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=3.0, gt=1)
    # pbt, pb2 (search/population.py): epochs between perturbations (None: a quarter of max_t), the share of the
    # population that copies and is copied, Ray's synchronous mode (every trial compared at the same epoch); pbt
    # only: the chance a mutated value is drawn afresh from its domain.
    perturbation_interval: int | None = Field(default=None, ge=1)
    quantile_fraction: float = Field(default=0.25, gt=0, le=0.5)
    synch: bool = False
    resample_probability: float = Field(default=0.25, ge=0, le=1)

    @property
    def population_based(self) -> bool:
        """Trials copy each other's weights and hyperparameters (pbt, pb2)."""
        return SCHEDULER_KINDS[self.name].population

    def settings(self) -> dict[str, Any]:
        """The settings this scheduler reads (besides max_t), as ``search.factory.build_scheduler`` takes them."""
        return {key: getattr(self, key) for key in SCHEDULER_KINDS[self.name].settings}


class ResourcesSection(_Strict):
    cpu: float = Field(default=1.0, gt=0)
    gpu: float = Field(default=0.0, ge=0)


class TrackingSection(_Strict):
    uri: str | None = None
    experiment: str | None = None


class RegistrySection(_Strict):
    enabled: bool = True
    model_name: str | None = None
    alias: str = "champion"


class PromotionSection(_Strict):
    """What happens between the search and the registry (platform/registry/rerun.py, platform/registry/promotion.py)."""

    # The k best configurations are trained again from scratch on n new seeds each; 0 in either turns it off.
    rerun_top_k: int = Field(default=3, ge=0, le=100)
    rerun_seeds: int = Field(default=3, ge=0, le=100)
    # interval: a challenger's 95% interval must clear the champion's mean; single: two single test numbers.
    rule: Literal[RULES] = INTERVAL_RULE

    @property
    def reruns_enabled(self) -> bool:
        return self.rerun_top_k > 0 and self.rerun_seeds > 0


class FailureSection(_Strict):
    max_failures: int = Field(default=1, ge=-1)


class SearchSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    task: Literal[task_names()]  # the registered tasks (trainables/tasks.py)
    data: DataSpec
    search: SearchSection = Field(default_factory=SearchSection)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)
    resources: ResourcesSection = Field(default_factory=ResourcesSection)
    tracking: TrackingSection = Field(default_factory=TrackingSection)
    registry: RegistrySection = Field(default_factory=RegistrySection)
    promotion: PromotionSection = Field(default_factory=PromotionSection)
    # A local folder or a pyarrow URI (s3://, gs://...): where trials keep checkpoints (platform/infra/storage.py).
    storage_path: str = "./ray_results"
    # Declares a local storage_path to be mounted by every node (NFS); a cluster of several nodes refuses it else.
    storage_shared: bool = False
    failure: FailureSection = Field(default_factory=FailureSection)
    trainable: dict[str, Any] = Field(default_factory=dict)

    @field_validator("storage_path")
    @classmethod
    def _storage_path_usable(cls, value: str) -> str:
        from mritune.platform.infra.storage import check_storage_path

        return check_storage_path(value)

    @model_validator(mode="after")
    def _searched_not_fixed(self) -> "SearchSpec":
        both = sorted(set(self.search.space) & set(self.trainable))
        if both:
            raise ValueError(f"{both[0]!r} is both searched (search.space) and fixed (trainable); keep one")
        return self

    # Derived values: the one place defaults by task are resolved.
    @property
    def metric(self) -> str:
        return self.search.metric or get_task(self.task).search_metric

    @property
    def mode(self) -> str:
        """``search.mode``, else the direction of the search metric (``val_loss`` minimises, F1 maximises)."""
        task = get_task(self.task)
        return self.search.mode or task.epoch_metrics.get(self.metric, task.search_mode)

    @property
    def model_name(self) -> str:
        return self.registry.model_name or get_task(self.task).model_name

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or f"mritune-{self.task}"

    @property
    def epochs(self) -> int:
        """The most epochs a trial trains: scheduler.max_t, else the trainable's `epochs`."""
        if self.scheduler.max_t is not None:
            return self.scheduler.max_t
        return int(self.trainable.get("epochs", _trainer_default(self.task, "epochs")))

    @property
    def perturbed(self) -> tuple[str, ...]:
        """The searched settings a population-based scheduler (pbt, pb2) perturbs during training; () for the
        others. The task's ``perturbable`` settings that are searched (pb2: as a numeric range, search/population.py);
        every other searched setting is drawn once per trial and travels with its weights."""
        if not self.scheduler.population_based:
            return ()
        from mritune.search.population import mutated_keys
        from mritune.search.space_yaml import parse_space

        return mutated_keys(self.scheduler.name, parse_space(self.search.space), get_task(self.task).perturbable)

    def fixed_config(self) -> dict[str, Any]:
        """Trainable settings that are not searched; epochs and image size follow the spec."""
        fixed = dict(self.trainable)
        fixed["epochs"] = self.epochs
        fixed.setdefault("image_size", self.data.resolved_image_size)
        return fixed


def _trainer_default(task: str, key: str) -> Any:
    return getattr(get_task(task).config_class.from_dict({}), key)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (``overrides.apply_settings``: values parsed as YAML) to a raw spec dict;
    returns a new dict. Raises SpecError for a malformed setting or a value that is not valid YAML."""
    try:
        result = apply_settings(raw, overrides)
    except UserInputError as exc:
        raise SpecError(str(exc)) from None
    keys = setting_keys(overrides)
    _drop_other_searchers_options(raw, result, keys)
    _drop_other_schedulers_settings(raw, result, keys)
    return result


def _drop_other_schedulers_settings(raw: dict[str, Any], result: dict[str, Any], keys: list[str]) -> None:
    """``--set scheduler.name=X`` switches the scheduler: the file's settings X does not read are dropped with a
    one-line note, unless they were set with ``--set`` too (then the spec check's error stays)."""
    scheduler, before = result.get("scheduler"), raw.get("scheduler")
    if "scheduler.name" not in keys or not isinstance(scheduler, dict):
        return
    name = scheduler.get("name")
    previous = before.get("name", SchedulerSection().name) if isinstance(before, dict) else None
    if name == previous or name not in SCHEDULER_KINDS:
        return
    explicit = {key.removeprefix("scheduler.") for key in keys if key.startswith("scheduler.")}
    reads = {"name", "max_t", *SCHEDULER_KINDS[name].settings, *SCHEDULER_KINDS[name].ignores}
    dropped = [key for key in scheduler if key not in reads and key not in explicit]
    for key in dropped:
        del scheduler[key]
    if dropped:
        logger.warning("note: --set scheduler.name=%s: dropped the %s setting(s) %s, which %s does not read",
                       name, previous, ", ".join(dropped), name)


def _drop_other_searchers_options(raw: dict[str, Any], result: dict[str, Any], keys: list[str]) -> None:
    """``--set search.algorithm=X`` alone switches the searcher: the file's options X does not accept are dropped
    with a one-line note, unless they were set with ``--set`` too (then the spec check's error stays)."""
    search, before = result.get("search"), raw.get("search")
    if "search.algorithm" not in keys or "search.options" in keys or not isinstance(search, dict):
        return
    algorithm = search.get("algorithm")
    previous = before.get("algorithm", SearchSection().algorithm) if isinstance(before, dict) else None
    options = search.get("options")
    if algorithm == previous or algorithm not in SEARCHER_OPTIONS or not isinstance(options, dict):
        return
    explicit = {key.removeprefix("search.options.") for key in keys if key.startswith("search.options.")}
    dropped = [key for key in options if key not in SEARCHER_OPTIONS[algorithm] and key not in explicit]
    for key in dropped:
        del options[key]
    if dropped:
        logger.warning("note: --set search.algorithm=%s: dropped the %s option(s) %s, which %s does not take",
                       algorithm, previous, ", ".join(dropped), algorithm)


def parse_spec(raw: Any, *, source: str = "spec") -> SearchSpec:
    """Validate a raw spec dict; every problem becomes one line naming the key path."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: the top level must be a mapping of keys (name, task, data, search, ...)")
    try:
        spec = SearchSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{source}: {_first_error(exc)}") from None
    _check_trainable_keys(spec, source)
    for check in (_check_search, _check_resources, _check_registry, _check_promotion):
        problem = check(spec)
        if problem:
            raise SpecError(f"{source}: {problem}")
    return spec


def _check_search(spec: SearchSpec) -> str | None:
    """The searcher's options and the scheduler's settings, as the factory will build them (no import of either),
    and whether the two combine."""
    scheduler = spec.scheduler
    try:
        check_searcher_for_scheduler(scheduler.name, spec.search.algorithm)
    except ValueError as exc:
        return f"search.algorithm: {exc}; set search.algorithm: random"
    if scheduler.population_based:
        return _check_population(spec)
    try:
        check_searcher_options(spec.search.algorithm, spec.search.options)
    except ValueError as exc:
        return f"search.options.{exc}"
    return _check_scheduler_settings(spec)


def _check_scheduler_settings(spec: SearchSpec) -> str | None:
    scheduler = spec.scheduler
    kind = SCHEDULER_KINDS[scheduler.name]
    # Given, not read, and not its default (a stored spec, model_dump'ed, holds every setting at its default).
    foreign = sorted(key for key in scheduler.model_fields_set - {"name", "max_t"} - set(kind.settings)
                     - set(kind.ignores) if getattr(scheduler, key) != SchedulerSection.model_fields[key].default)
    if foreign:
        reads = ", ".join(kind.settings) or "only max_t"
        return f"scheduler.{foreign[0]}: {scheduler.name} does not read it ({scheduler.name} reads {reads})"
    try:
        check_scheduler_settings(scheduler.name, max_t=spec.epochs, **scheduler.settings())
    except ValueError as exc:
        where = "scheduler.max_t" if scheduler.max_t is not None else "trainable.epochs, the scheduler's max_t,"
        return f"scheduler.{exc} ({where} is {spec.epochs})"
    return None


def _check_population(spec: SearchSpec) -> str | None:
    """pbt/pb2: one population drawn by Ray's variant generator, at least one searched setting to perturb."""
    name, search = spec.scheduler.name, spec.search
    if search.options:
        return (f"search.options.{sorted(search.options)[0]}: {name}'s trials are drawn by Ray's basic variant "
                "generator, which takes no options; remove search.options")
    if search.num_samples < 2:
        return f"search.num_samples: {name} needs a population of at least 2 trials, got {search.num_samples}"
    if search.max_concurrent is not None and search.max_concurrent < search.num_samples:
        return (f"search.max_concurrent: {search.max_concurrent} would split {name}'s population of "
                f"{search.num_samples} (search.num_samples) into groups that never copy each other; remove it "
                "(Ray time-shares the CPUs among the trials)")
    problem = _check_scheduler_settings(spec)
    if problem:
        return problem
    perturbable = get_task(spec.task).perturbable
    if not spec.perturbed:
        what = ("as a numeric range (uniform, loguniform, randint, ...; pb2 keeps a choice fixed)" if name == "pb2"
                else "")
        return (f"search.space: {name} perturbs only the {spec.task}'s {', '.join(perturbable)} (settings a resumed "
                f"training applies to its checkpoint); search at least one of them {what}".rstrip())
    return None


def _check_resources(spec: SearchSpec) -> str | None:
    """Ray accepts fractions of one CPU or GPU, and whole numbers above one."""
    for key in ("cpu", "gpu"):
        value = getattr(spec.resources, key)
        if value > 1 and not float(value).is_integer():
            return f"resources.{key}: {value:g} is neither a fraction of one {key.upper()} nor a whole number"
    return None


# What MLflow's registry refuses (mlflow.utils.validation), checked before a search trains for nothing.
_ALIAS_PATTERN = re.compile(r"^[\w\-]{1,255}$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


def _check_registry(spec: SearchSpec) -> str | None:
    if spec.registry.enabled:  # else found out only after every trial trained
        try:
            get_task(spec.task).pyfunc_logging()
        except UserInputError as exc:
            return f"registry.enabled: {exc}; set registry.enabled: false"
    name = spec.model_name
    if not name.strip() or any(char in name for char in "/:") or name == "." or name.startswith(".."):
        return (f"registry.model_name: {name!r} is not a name MLflow's registry accepts "
                "(not empty, no '/' or ':', not '.' or starting with '..')")
    alias = spec.registry.alias
    if not _ALIAS_PATTERN.match(alias) or _RESERVED_ALIAS.match(alias):
        return (f"registry.alias: {alias!r} is not an alias MLflow accepts (letters, digits, '_' and '-'; "
                "not 'latest' or v<number>)")
    return None


def _check_promotion(spec: SearchSpec) -> str | None:
    """More configurations to re-run than the search has trials cannot be meant (the default 3 is capped at the
    trials there are, so ``--set search.num_samples=2`` needs no second override)."""
    top_k = spec.promotion.rerun_top_k
    if "rerun_top_k" in spec.promotion.model_fields_set and top_k > spec.search.num_samples:
        return (f"promotion.rerun_top_k: {top_k} is more than the search's {spec.search.num_samples} trials "
                "(search.num_samples); 0 turns re-runs off")
    return None


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    path = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{path}: {message}{more}"


def _check_trainable_keys(spec: SearchSpec, source: str) -> None:
    """Fixed and searched settings must be keys the training accepts, and one sampled config must validate."""
    from mritune.search.space_yaml import parse_space

    try:
        domains = parse_space(spec.search.space)
    except ValueError as exc:
        raise SpecError(f"{source}: search.space: {exc}") from None
    config_class = get_task(spec.task).config_class
    allowed = sorted(field.name for field in dataclasses.fields(config_class))
    for section, keys in (("trainable", spec.trainable), ("search.space", domains)):
        unknown = sorted(set(keys) - set(allowed))
        if unknown:
            raise SpecError(
                f"{source}: {section}.{unknown[0]}: not a {spec.task} setting; allowed: {', '.join(allowed)}"
            )
    try:
        config_class.from_dict(spec.fixed_config())
    except ValueError as exc:
        raise SpecError(f"{source}: trainable: {exc}") from None
    check_space = getattr(config_class, "check_search_space", None)  # a task's cross-setting rules, if any
    if check_space is not None:
        try:
            check_space(spec.fixed_config(), domains)
        except ValueError as exc:
            raise SpecError(f"{source}: search.space: {exc}") from None
    for config in _value_by_value(domains):
        try:
            config_class.from_dict({**spec.fixed_config(), **config})
        except ValueError as exc:
            raise SpecError(f"{source}: search.space: {exc}") from None
    if spec.metric not in searchable_metrics(spec.task):
        raise SpecError(
            f"{source}: search.metric: {spec.metric!r} is not reported by the {spec.task}; "
            f"choose one of {', '.join(searchable_metrics(spec.task))}"
        )


def searchable_metrics(task: str) -> tuple[str, ...]:
    """Metrics a trial reports every epoch, so a searcher and ASHA can use them."""
    return tuple(get_task(task).epoch_metrics)


def _value_by_value(domains: dict[str, Any]) -> list[dict[str, Any]]:
    """Configurations that hold every choice value and both bounds of every range once, the other settings at
    their first value: validating these checks the whole space deterministically (one random sample would pass a
    bad choice value by chance)."""
    values = {key: _extremes(domain) for key, domain in domains.items()}
    first = {key: options[0] for key, options in values.items()}
    return [first] + [{**first, key: value} for key, options in values.items() for value in options[1:]]


def _extremes(domain: Any) -> list[Any]:
    """A Ray Tune domain's values to validate: every category, or a range's two ends (``randint``'s upper end is
    exclusive in Ray, its last value is ``upper - 1``; ``qrandint``'s is inclusive); a constant is itself."""
    from ray.tune.search.sample import Categorical, Float, Integer, Quantized

    if isinstance(domain, Categorical):
        return list(domain.categories)
    if isinstance(domain, Integer):
        return [domain.lower, domain.upper if isinstance(domain.get_sampler(), Quantized) else domain.upper - 1]
    if isinstance(domain, Float):
        return [domain.lower, domain.upper]
    return [domain]


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SearchSpec:
    """Read, override and validate a spec file."""
    file = Path(path)
    if not file.is_file():
        raise MissingInputError(f"spec file {file} not found; pass a YAML file such as configs/classifier-quick.yaml")
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{file}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_spec(apply_overrides(raw or {}, overrides), source=str(file))


def spec_to_yaml(spec: SearchSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
