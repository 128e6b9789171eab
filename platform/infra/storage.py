"""Where a search's trials keep their checkpoints: a local folder or a pyarrow filesystem URI, and who can reach it.

Since Ray 2.7 a multi-node Tune run needs its ``storage_path`` on storage every node reaches: checkpoints are no
longer synced to the head. That is NFS (a local path every node mounts) or a URI that pyarrow opens
(``s3://bucket/prefix``, ``gs://``, ``abfs://``, ``hdfs://``). Options of the filesystem go in the URI's query,
as pyarrow reads them (``s3://mritune/runs?endpoint_override=127.0.0.1:8333&scheme=http`` for an S3 endpoint such
as SeaweedFS or MinIO); credentials never do: they come from the environment of every node (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` or the cloud's own instance credentials).

`check_storage_path` is the spec's syntax check; `require_shared_storage` refuses a local folder on a cluster of
several nodes (the pattern of `cluster.require_remote_tracking`); `check_storage_reachable` opens a URI once before
anything starts; the small file helpers read and write the search's own files (``mritune_search.json``, searcher
state) in a local folder or a URI alike.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from mritune.platform.infra.errors import first_line
from mritune.trainables.errors import AccessDenied, ServiceUnavailable, UserInputError

if TYPE_CHECKING:
    from mritune.platform.infra.cluster import ClusterInfo

# URI schemes pyarrow.fs.FileSystem.from_uri opens and Ray Tune accepts as storage_path.
URI_SCHEMES = frozenset({"s3", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs"})
# Query options that would put a secret into a spec, a state file or a log.
_SECRET_OPTIONS = frozenset({"access_key", "secret_key", "session_token", "account_key", "sas_token"})
SHARED_HOW_TO = (
    "set storage_path to storage every node reaches, e.g. s3://BUCKET/ray_results (credentials from "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY on every node; for a local S3 endpoint add "
    "?endpoint_override=HOST:PORT&scheme=http), or, if the folder is on NFS mounted by every node, "
    "set storage_shared: true"
)


@dataclass(frozen=True, kw_only=True)
class StorageLocation:
    """A storage_path as the runner uses it: a URI (``is_uri``) or an absolute local folder."""

    value: str
    is_uri: bool

    def child(self, name: str) -> "StorageLocation":
        """The folder `name` inside this one; for a URI the name goes into the path, before the query."""
        if not self.is_uri:
            return StorageLocation(value=str(Path(self.value) / name), is_uri=False)
        parts = urlsplit(self.value)
        return StorageLocation(value=urlunsplit(parts._replace(path=posixpath.join(parts.path or "/", name))),
                               is_uri=True)

    @property
    def parent(self) -> "StorageLocation":
        if not self.is_uri:
            return StorageLocation(value=str(Path(self.value).parent), is_uri=False)
        parts = urlsplit(self.value)
        return StorageLocation(value=urlunsplit(parts._replace(path=posixpath.dirname(parts.path.rstrip("/")))),
                               is_uri=True)

    @property
    def name(self) -> str:
        return posixpath.basename(urlsplit(self.value).path.rstrip("/")) if self.is_uri else Path(self.value).name

    def __str__(self) -> str:
        return self.value


def check_storage_path(value: str) -> str:
    """The spec's check of ``storage_path``: a local path, or a URI of a scheme pyarrow opens without secrets.

    Raises:
        ValueError: An unknown URI scheme, a URI without a bucket/host, or credentials in the URI.

    Example:
        >>> check_storage_path("s3://mritune/ray_results?endpoint_override=127.0.0.1:8333&scheme=http")
        's3://mritune/ray_results?endpoint_override=127.0.0.1:8333&scheme=http'
    """
    if "://" not in value:
        return value
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return value
    if scheme not in URI_SCHEMES:
        raise UserInputError(f"URI scheme {scheme!r} is not one Ray Tune stores trials in; use a local path or one of "
                         f"{', '.join(sorted(URI_SCHEMES))}")
    if not parts.netloc:
        raise UserInputError(f"{value!r} names no bucket or host, e.g. s3://BUCKET/ray_results")
    secrets = sorted(_SECRET_OPTIONS & {key for key, _ in parse_qsl(parts.query)})
    if parts.password or secrets:
        raise UserInputError("credentials do not belong in storage_path (it is saved with the search); set them in "
                         "every node's environment, e.g. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return value


def parse_location(value: str) -> StorageLocation:
    """A checked storage_path: a URI kept as given, a local path (or ``file://`` URI) made absolute."""
    check_storage_path(value)
    if value.startswith("file://"):
        return StorageLocation(value=str(Path(urlsplit(value).path).resolve()), is_uri=False)
    if "://" in value:
        return StorageLocation(value=value, is_uri=True)
    return StorageLocation(value=str(Path(value).expanduser().resolve()), is_uri=False)


def require_shared_storage(location: StorageLocation, *, shared: bool, cluster: "ClusterInfo") -> None:
    """On a cluster of several nodes, trials on other nodes must reach the checkpoints: refuse a local folder.

    Raises:
        ValueError: A local folder, not declared shared (``storage_shared: true``), on more than one node.
    """
    if cluster.num_nodes <= 1 or location.is_uri or shared:
        return
    raise UserInputError(
        f"storage_path {location.value} is a local folder but the cluster has {cluster.num_nodes} nodes, whose "
        f"trials cannot reach each other's checkpoints; {SHARED_HOW_TO}"
    )


def open_filesystem(location: StorageLocation):
    """(pyarrow filesystem, path inside it) for `location`."""
    import pyarrow.fs

    if not location.is_uri:
        return pyarrow.fs.LocalFileSystem(), location.value
    return pyarrow.fs.FileSystem.from_uri(location.value)


def check_storage_reachable(location: StorageLocation) -> None:
    """Open a URI's folder once (creating it), so a wrong endpoint or key fails here, in one line.

    Raises:
        ConnectionError: The storage does not answer or refuses this machine's credentials.
    """
    if not location.is_uri:
        return
    try:
        filesystem, path = open_filesystem(location)
        filesystem.create_dir(path, recursive=True)
        filesystem.get_file_info(path)
    except OSError as exc:
        raise ServiceUnavailable(f"storage_path {location.value} cannot be used from this machine: {first_line(exc)}; "
                              "check the bucket, the endpoint and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from None


# Written and removed before a search starts: a folder that cannot take this cannot take a checkpoint either.
_PROBE_BYTES = 1 << 20


def check_storage_usable(location: StorageLocation) -> None:
    """Refuse, before anything starts, storage the search could not write its checkpoints to: a URI that does not
    answer (`check_storage_reachable`), or a local folder that cannot be created or take a 1 MiB probe file
    (read-only, full). A local check leaves nothing behind, not even the folders it created.

    Raises:
        ServiceUnavailable: A URI's storage does not answer or refuses this machine's credentials.
        AccessDenied: A local folder cannot be created or written.
    """
    if location.is_uri:
        check_storage_reachable(location)
        return
    root = Path(location.value)
    probe = root / f".mritune-write-probe-{os.getpid()}"
    created = [folder for folder in (root, *root.parents) if not folder.exists()]  # deepest first
    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as file:
            file.write(b"\0" * _PROBE_BYTES)
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:
        raise AccessDenied(f"storage_path {root} cannot hold the search's checkpoints ({exc.strerror or exc}); "
                           "choose a writable folder with free space") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()


def write_text(location: StorageLocation, text: str) -> None:
    """Write a small file (creating its folder)."""
    filesystem, path = open_filesystem(location)
    filesystem.create_dir(posixpath.dirname(path) if location.is_uri else str(Path(path).parent), recursive=True)
    with filesystem.open_output_stream(path) as out:
        out.write(text.encode())


def read_bytes(location: StorageLocation) -> bytes:
    filesystem, path = open_filesystem(location)
    with filesystem.open_input_stream(path) as source:
        return source.read()


def upload_folder(local: str | Path, location: StorageLocation) -> None:
    """Copy a local folder's files (recursively) into ``location``, a local folder or a URI, creating it."""
    import pyarrow.fs

    filesystem, path = open_filesystem(location)
    filesystem.create_dir(path, recursive=True)
    pyarrow.fs.copy_files(str(Path(local).resolve()), path, source_filesystem=pyarrow.fs.LocalFileSystem(),
                          destination_filesystem=filesystem)


def download_folder(location: StorageLocation, local: str | Path) -> Path:
    """Copy the folder at ``location`` (local or a URI) into the local folder ``local``; returns ``local``."""
    import pyarrow.fs

    filesystem, path = open_filesystem(location)
    Path(local).mkdir(parents=True, exist_ok=True)
    pyarrow.fs.copy_files(path, str(Path(local).resolve()), source_filesystem=filesystem,
                          destination_filesystem=pyarrow.fs.LocalFileSystem())
    return Path(local)


def is_file(location: StorageLocation) -> bool:
    import pyarrow.fs

    filesystem, path = open_filesystem(location)
    return filesystem.get_file_info(path).type == pyarrow.fs.FileType.File


def newest_file(location: StorageLocation, prefix: str) -> StorageLocation | None:
    """The most recently modified file in the folder whose name starts with `prefix`, or None."""
    import pyarrow.fs

    filesystem, path = open_filesystem(location)
    infos = [info for info in filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
             if info.type == pyarrow.fs.FileType.File and info.base_name.startswith(prefix)]
    if not infos:
        return None
    return location.child(max(infos, key=lambda info: (info.mtime_ns or 0, info.base_name)).base_name)


def folders_named(location: StorageLocation, prefix: str) -> list[StorageLocation]:
    """The sub-folders whose names start with `prefix`, sorted by name."""
    import pyarrow.fs

    filesystem, path = open_filesystem(location)
    infos = filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    names = sorted(info.base_name for info in infos
                   if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith(prefix))
    return [location.child(name) for name in names]
