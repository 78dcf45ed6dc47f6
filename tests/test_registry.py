"""The OCI client against a registry process of the test's own that wants credentials:
where credentials come from (environment, docker config auths, credential helpers), and
that a refusal is one line without them."""

from __future__ import annotations

import base64
import json
import os
import stat

import bcrypt
import pytest

from builder.errors import PublishError
from builder.registry import Reference, Registry

USER = "ci-bot"


@pytest.fixture
def locked_registry(private_registry, tmp_path):
    password = "pw-" + os.urandom(8).hex()
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    private_registry.htpasswd = tmp_path / "htpasswd"
    private_registry.htpasswd.write_text(f"{USER}:{hashed}\n")
    private_registry.ensure()
    return private_registry, password


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No credentials from this machine: an empty docker config, no SCISTACKS_ variables."""
    for var in ("SCISTACKS_REGISTRY_USER", "SCISTACKS_REGISTRY_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


def _can_push(address: str) -> str:
    return Registry(address, timeout=10).push_blob("auth/check", b"hello")


@pytest.mark.registry
def test_without_credentials_the_refusal_is_one_line(locked_registry, clean_env):
    registry, _ = locked_registry
    with pytest.raises(PublishError) as err:
        _can_push(registry.address)
    assert registry.address in str(err.value) and "UNAUTHORIZED" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.registry
def test_credentials_from_the_environment(locked_registry, clean_env, monkeypatch):
    registry, password = locked_registry
    monkeypatch.setenv("SCISTACKS_REGISTRY_USER", USER)
    monkeypatch.setenv("SCISTACKS_REGISTRY_PASSWORD", "wrong")
    with pytest.raises(PublishError) as err:
        _can_push(registry.address)
    assert "wrong" not in str(err.value)
    monkeypatch.setenv("SCISTACKS_REGISTRY_PASSWORD", password)
    assert _can_push(registry.address).startswith("sha256:")


@pytest.mark.registry
def test_credentials_from_docker_config_auths(locked_registry, clean_env):
    registry, password = locked_registry
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    (clean_env / "config.json").write_text(
        json.dumps({"auths": {registry.address: {"auth": auth}}})
    )
    assert _can_push(registry.address).startswith("sha256:")


@pytest.mark.registry
@pytest.mark.parametrize("key", ["credHelpers", "credsStore"])
def test_credentials_from_a_docker_credential_helper(
    locked_registry, clean_env, monkeypatch, tmp_path, key
):
    registry, password = locked_registry
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked"
    helper = bin_dir / "docker-credential-testvault"
    # the helper protocol: `get` reads the server on stdin, answers JSON on stdout
    helper.write_text(
        "#!/bin/sh\n"
        f'read server; echo "$1 $server" >> {asked}\n'
        f'[ "$server" = "{registry.address}" ] || exit 1\n'
        f'printf \'{{"ServerURL":"%s","Username":"{USER}","Secret":"{password}"}}\' '
        '"$server"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = (
        {"credHelpers": {registry.address: "testvault"}}
        if key == "credHelpers"
        else {"credsStore": "testvault"}
    )
    (clean_env / "config.json").write_text(json.dumps(config))
    assert _can_push(registry.address).startswith("sha256:")
    assert asked.read_text().splitlines()[0] == f"get {registry.address}"


@pytest.mark.parametrize(
    ("text", "host", "repository", "tag", "digest"),
    [
        ("ghcr.io/org/pangeo:2026.01.02", "ghcr.io", "org/pangeo", "2026.01.02", None),
        ("localhost:5000/ns/demo", "localhost:5000", "ns/demo", None, None),
        ("127.0.0.1:5000/a/b/c:lock-1@sha256:ab", "127.0.0.1:5000", "a/b/c", "lock-1", "sha256:ab"),
    ],
)
def test_reference_parse(text, host, repository, tag, digest):
    ref = Reference.parse(text)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == (host, repository, tag, digest)
    assert str(ref) == text


@pytest.mark.parametrize("text", ["pangeo", "org/pangeo:1"])
def test_reference_without_a_registry_host_is_refused(text):
    with pytest.raises(PublishError, match="--registry"):
        Reference.parse(text)
