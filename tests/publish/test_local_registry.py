"""The registry `scistacks release` starts when no --registry is given."""

from __future__ import annotations

import json
import signal
import urllib.request

import pytest

from builder.publish.local_registry import LocalRegistry


def _catalog(registry: LocalRegistry) -> dict:
    with urllib.request.urlopen(f"http://{registry.address}/v2/_catalog", timeout=5) as resp:
        return json.loads(resp.read())


@pytest.mark.registry
def test_ensure_starts_then_reuses_then_restarts_on_the_same_storage(private_registry):
    from builder.registry import Registry

    assert not private_registry.answers()
    how = private_registry.ensure()
    assert how.startswith("started docker-registry")
    pid = private_registry.pid()
    assert pid is not None and private_registry.answers()
    assert private_registry.ensure() == "reused" and private_registry.pid() == pid

    client = Registry(private_registry.address)
    blob = client.push_blob("kept/across-restarts", b"some bytes")
    private_registry.stop(signal.SIGKILL)  # a crash, not a shutdown
    assert not private_registry.answers()
    private_registry.ensure()
    assert private_registry.pid() != pid
    assert client.blob("kept/across-restarts", blob) == b"some bytes"
    assert "kept/across-restarts" in _catalog(private_registry)["repositories"]


def test_config_listens_where_asked_and_adds_basic_auth_only_when_given(tmp_path):
    plain = LocalRegistry(address="127.0.0.1:5123", state_dir=tmp_path).config()
    assert "addr: 127.0.0.1:5123" in plain
    assert f"rootdirectory: {tmp_path / 'data'}" in plain
    assert "htpasswd" not in plain
    locked = LocalRegistry("127.0.0.1:5123", tmp_path, htpasswd=tmp_path / "htpasswd").config()
    assert f"path: {tmp_path / 'htpasswd'}" in locked
