"""The cosign boundary without a registry: options refused before cosign runs, cosign's
error chains said in one plain line, plain http only for loopback registries."""

from __future__ import annotations

import pytest

from builder.errors import PublishError
from builder.publish import cosign
from builder.publish.cosign import Identity, Signer


def test_signer_needs_a_key_or_keyless(monkeypatch, tmp_path):
    monkeypatch.delenv("COSIGN_KEY", raising=False)
    with pytest.raises(PublishError, match="signing needs a key"):
        Signer.resolve(None, False)
    with pytest.raises(PublishError, match="no such key file"):
        Signer.resolve(str(tmp_path / "nope.key"), False)
    with pytest.raises(PublishError, match="--keyless signs without a key"):
        Signer.resolve("cosign.key", True)
    key = tmp_path / "cosign.key"
    key.write_text("x")
    monkeypatch.setenv("COSIGN_KEY", str(key))
    assert Signer.resolve(None, False).key == str(key)
    assert Signer.resolve("k8s://ns/secret", False).key == "k8s://ns/secret"  # not a file
    assert Signer.resolve(None, True).key is None


def test_identity_is_a_key_or_both_certificate_options(tmp_path):
    with pytest.raises(PublishError, match="whose signature"):
        Identity.resolve(None, None, None)
    with pytest.raises(PublishError, match="needs both"):
        Identity.resolve(None, "me", None)
    with pytest.raises(PublishError, match="exclude each other"):
        Identity.resolve("k.pub", "me", "https://issuer")
    assert Identity.resolve(None, "me", "https://i").describe == "me (issuer https://i)"


def test_only_digests_are_signed():
    with pytest.raises(PublishError, match="by digest"):
        Signer("k").sign(["ghcr.io/org/demo:latest"])


@pytest.mark.parametrize(
    ("refs", "flag"),
    [
        (["localhost:5000/a/b@sha256:0"], True),
        (["127.0.0.1:4999/a/b@sha256:0"], True),
        (["[::1]:5000/a/b@sha256:0"], True),
        (["ghcr.io/a/b@sha256:0"], False),
        (["localhost.example.org/a/b@sha256:0"], False),
    ],
)
def test_plain_http_only_for_loopback(refs, flag):
    assert (cosign._http(refs) == ["--allow-http-registry"]) is flag


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            "signing [r@sha256:1]: getting signer: reading key: decrypt: encrypted: "
            "decryption failed",
            "wrong password for the key",
        ),
        ("signing [r@sha256:1]: reading key: inappropriate ioctl for device", "not set"),
        ("reading key: open nope.key: no such file or directory", "no such key file"),
        ("PUT http://h/v2/x/manifests/sha256-1.sig: DENIED: requested access", "refused"),
        ("POST http://h/v2/t/blobs/uploads/: unexpected status code 405 Method Not", "refused"),
    ],
)
def test_cosign_errors_said_plainly(line, said):
    assert said in cosign._explain(line)
    assert "\n" not in cosign._explain(line)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("no signatures found", "not signed"),
        ("no matching signatures: invalid or missing digest in claim: sha256:1", "another digest"),
        ("no matching signatures: invalid signature when validating ASN.1", "not by key"),
        ("none of the expected identities matched what was in the certificate", "someone else"),
        ("image tag not found: GET http://h/v2/x/manifests/y: MANIFEST_UNKNOWN", "no such image"),
    ],
)
def test_verification_failures_name_the_reason(line, reason):
    assert reason in cosign._why_not(line, Identity(key="k.pub"))


def test_keyless_identity_on_github_actions(monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv(
        "GITHUB_WORKFLOW_REF", "org/repo/.github/workflows/publish.yml@refs/heads/main"
    )
    monkeypatch.delenv("GITHUB_SERVER_URL", raising=False)
    assert cosign.keyless_identity() == (
        "https://github.com/org/repo/.github/workflows/publish.yml@refs/heads/main",
        cosign.GITHUB_ISSUER,
    )
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert cosign.keyless_identity() is None


def test_registry_credentials_from_the_environment_never_reach_argv(monkeypatch):
    monkeypatch.setenv("SCISTACKS_REGISTRY_USER", "u")
    monkeypatch.setenv("SCISTACKS_REGISTRY_PASSWORD", "s3cret")
    with cosign._environment({"ghcr.io"}) as env:
        config = (__import__("pathlib").Path(env["DOCKER_CONFIG"]) / "config.json").read_text()
        assert "ghcr.io" in config and "s3cret" not in config  # base64, in a 0600 file
    assert not __import__("pathlib").Path(env["DOCKER_CONFIG"]).exists()
