"""Finding models in the MLflow registry and bringing them to local disk: references, resolve, pull, open.

A model reference is ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``NAME@ALIAS``, ``NAME/VERSION``, ``NAME``
(alias ``champion``) or a folder written by ``mritune pull``. Unknown model, unknown alias/version and an
unreachable tracking server each give a one-line error that says which.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

from mritune.deploy.model_files import ModelFolder, check_model_loads, read_model_folder
from mritune.deploy.tracking_uri import check_tracking_reachable, resolve_tracking_uri
from mritune.trainables.errors import MissingInputError, UserInputError

DEFAULT_ALIAS = "champion"
METADATA_FILE = "metadata.json"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?:@(?P<alias>{_NAME})|/(?P<version>\d+))?$")


class ModelNotFoundError(MissingInputError):
    """The registry has no such model, alias or version."""


@dataclass(frozen=True)
class ModelRef:
    """A registry reference: a name and either an alias or a version."""

    name: str
    alias: str | None = None
    version: int | None = None

    @property
    def uri(self) -> str:
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        return f"models:/{self.name}@{self.alias}"


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model version, as `pull` records it in metadata.json."""

    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str | None
    source: str
    tracking_uri: str
    tags: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def parse_model_ref(text: str) -> ModelRef | Path:
    """A reference string → ModelRef, or the Path of an existing local model folder."""
    text = text.strip()
    path = Path(text).expanduser()
    if text and path.is_dir():
        if (path / "MLmodel").is_file():
            return path
        if _REFERENCE.match(text) is None:  # a folder named like a registered model may still mean the model
            raise MissingInputError(f"{text} is not a model folder (no MLmodel file); run `mritune pull` first")
    bare = text.removeprefix("models:/")
    match = _REFERENCE.match(bare)
    if match is None:
        if bare == text and ("/" in text or text.startswith(".")):
            raise MissingInputError(f"model folder {text} does not exist (and it is not a registry reference)")
        raise UserInputError(
            f"bad model reference {text!r}; use models:/NAME@ALIAS, models:/NAME/VERSION, NAME, "
            "or a folder written by `mritune pull`"
        )
    version = match["version"]
    alias = match["alias"] or (None if version else DEFAULT_ALIAS)
    return ModelRef(name=match["name"], alias=alias, version=int(version) if version else None)


def resolve_version(ref: ModelRef, *, tracking_uri: str) -> ModelVersionInfo:
    """Look a reference up in the registry; ModelNotFoundError says whether the model, alias or version is missing."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    check_tracking_reachable(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        registered = client.get_registered_model(ref.name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = ", ".join(m.name for m in client.search_registered_models(max_results=20)) or "none"
        raise ModelNotFoundError(
            f"no registered model {ref.name!r} at {tracking_uri} (registered: {known})"
        ) from None
    aliases = dict(registered.aliases or {})
    if ref.alias is not None:
        if ref.alias not in aliases:
            listed = ", ".join(f"{a}→v{v}" for a, v in sorted(aliases.items())) or "none"
            raise ModelNotFoundError(f"model {ref.name!r} has no alias {ref.alias!r} (aliases: {listed})")
        version = int(aliases[ref.alias])
    else:
        version = int(ref.version)
    return _version_info(client, ref.name, version, aliases, tracking_uri)


def _version_info(client, name: str, version: int, aliases: dict, tracking_uri: str) -> ModelVersionInfo:
    from mlflow.exceptions import MlflowException

    try:
        model_version = client.get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        raise ModelNotFoundError(f"model {name!r} has no version {version} (versions: {versions or 'none'})") from None
    metrics = client.get_run(model_version.run_id).data.metrics if model_version.run_id else {}
    return ModelVersionInfo(
        name=name,
        version=version,
        aliases=tuple(sorted(a for a, v in aliases.items() if int(v) == version)),
        run_id=model_version.run_id,
        source=model_version.source,
        tracking_uri=tracking_uri,
        tags=dict(model_version.tags or {}),
        metrics=dict(metrics),
    )


def download_version(info: ModelVersionInfo, dst: Path) -> ModelFolder:
    """Download exactly this version (not an alias that may move meanwhile) under ``dst`` and check it."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    # Resolve the artifact location with our own client: MLflow's models:/ artifact repository consults the
    # global registry URI (not the one passed in) and would create an empty ./mlflow.db.
    client = MlflowClient(tracking_uri=info.tracking_uri, registry_uri=info.tracking_uri)
    location = client.get_model_version_download_uri(info.name, str(info.version))
    with _quiet_progress_bar():
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(dst), tracking_uri=info.tracking_uri
        )
    return read_model_folder(local)


@contextlib.contextmanager
def _quiet_progress_bar() -> Iterator[None]:
    """Hide MLflow's per-file download progress bar for this call (a user's own setting wins)."""
    import os

    variable = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if variable in os.environ:
        yield
        return
    os.environ[variable] = "false"
    try:
        yield
    finally:
        os.environ.pop(variable, None)


def pull(reference: str, *, out_dir: str | Path, tracking_uri: str | None = None, overwrite: bool = False) -> dict:
    """Download a registered model into ``out_dir`` and write ``out_dir/metadata.json``; returns that metadata.

    The download goes to a sibling temporary folder first, so a refused (unsafe) or failed download leaves
    ``out_dir`` as it was.

    Args:
        reference: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME``
            (alias ``champion``).
        out_dir: The folder to create; it must be empty or absent unless ``overwrite``.
        tracking_uri: The MLflow store; None: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns.db``.
        overwrite: Replace a non-empty ``out_dir`` (``mritune pull --force``).

    Returns:
        What ``metadata.json`` holds: name, version, aliases, run id, metrics, dataset fingerprint, model kind,
        image size, class names or latent size, and the OOD guard's file (None for a model without one).

    Raises:
        ValueError: ``reference`` is a local folder or malformed, or ``out_dir`` is not empty.
        ModelNotFoundError: The registry has no such model, alias or version (the message says which).
        TrackingServerUnreachable: An http(s) tracking server does not answer.
        FileNotFoundError: A SQLite tracking store or a local model folder does not exist.
        UnsafeModelError: The model would need pickle to load (only native ``.keras`` inside a pyfunc is loaded),
            or its ``.keras`` file carries code that Keras' safe_mode refuses (a Lambda layer).

    Example:
        >>> pull("mritune-classifier@champion", out_dir="models/classifier")  # doctest: +SKIP
        {'name': 'mritune-classifier', 'version': 3, 'aliases': ['champion'], ...}
    """
    ref = parse_model_ref(reference)
    if isinstance(ref, Path):
        raise UserInputError(f"{reference} is a local folder; pull takes a registry reference such as NAME@champion")
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise UserInputError(f"{out_dir} is not empty; choose a new folder or pass --force to replace it")
    info = resolve_version(ref, tracking_uri=resolve_tracking_uri(tracking_uri))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.pull-", dir=out_dir.parent))
    try:
        folder = download_version(info, staging)
        check_model_loads(folder)  # predict and serve load it the same way; a hostile file never reaches out_dir
        record = pull_metadata(info, folder)
        (folder.path / METADATA_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        folder.path.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return record


def pull_metadata(info: ModelVersionInfo, folder: ModelFolder) -> dict:
    """What metadata.json holds: the version's identity, metrics, dataset fingerprint and model configuration."""
    record = asdict(info)
    record["aliases"] = list(info.aliases)
    record.update(
        kind=folder.kind,
        image_size=folder.image_size,
        class_names=folder.config.get("class_names"),
        latent_dim=folder.config.get("latent_dim"),
        dataset_fingerprint=info.tags.get("dataset_fingerprint") or folder.metadata.get("dataset_fingerprint"),
        model_mritune_version=folder.metadata.get("mritune_version") or folder.metadata.get("mritune version"),
        mritune_version=_mritune_version(),
        # The OOD guard's file inside the folder (pulled with the rest); None: registered without one.
        ood_guard=None if folder.guard_path is None else
        folder.guard_path.relative_to(folder.path.resolve()).as_posix(),
    )
    return record


@contextlib.contextmanager
def open_model(reference: str, *, tracking_uri: str | None = None) -> Iterator[tuple[ModelFolder, dict]]:
    """Yield a checked local model folder and its description for a reference; a download is removed afterwards.

    Load what you need (the Keras model) inside the ``with`` block.

    Args:
        reference: A registry reference (as for :func:`pull`) or a folder written by ``mritune pull``.
        tracking_uri: The MLflow store; None: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns.db``.

    Raises:
        ValueError: ``reference`` is malformed.
        ModelNotFoundError: The registry has no such model, alias or version (the message says which).
        TrackingServerUnreachable: An http(s) tracking server does not answer.
        FileNotFoundError: A SQLite tracking store or a local model folder does not exist.
        UnsafeModelError: The model would need pickle to load (only native ``.keras`` inside a pyfunc is loaded).

    Example:
        >>> with open_model("mritune-dcgan@champion") as (folder, description):  # doctest: +SKIP
        ...     sampler = GeneratorSampler.from_folder(folder)
    """
    ref = parse_model_ref(reference)
    if isinstance(ref, Path):
        folder = read_model_folder(ref)
        metadata_file = ref / METADATA_FILE
        description = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {"source": str(ref)}
        yield folder, description
        return
    info = resolve_version(ref, tracking_uri=resolve_tracking_uri(tracking_uri))
    with tempfile.TemporaryDirectory(prefix="mritune-model-") as tmp:
        folder = download_version(info, Path(tmp))
        yield folder, pull_metadata(info, folder)


def _mritune_version() -> str:
    try:
        return importlib_metadata.version("mritune")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"
