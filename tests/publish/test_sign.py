"""Signed releases: cosign signatures made by ``publish --sign`` with a key pair made here
(``cosign generate-key-pair``), checked by ``verify`` and ``hub check --verify``, and the
bad inputs (no key, wrong password, a registry refusing the signature, a signature made
for another digest), each one line that moves no tag.

The demo's images are the session's (built and smoke-tested once, ``smoked``); each
module-level publish goes to a namespace of its own on the shared registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from docker_support import IN_CI, REGISTRY
from hub.conftest import push_release
from publish.conftest import namespace

from builder.registry import OCI_MANIFEST, Registry

pytestmark = [pytest.mark.docker, pytest.mark.arm64, pytest.mark.registry]

PASSWORD = "correct horse battery staple"


def cli(*args, root: Path | None = None, cwd: Path | None = None, env=None, drop=()):
    """``scistacks ARGS`` as users run it; ``drop``: variables taken out of the env."""
    base = {
        k: v for k, v in os.environ.items() if k not in ("SCISTACKS_ROOT", "SCISTACKS_DEBUG", *drop)
    }
    command = [sys.executable, "-m", "builder"]
    if root is not None:
        command += ["--root", str(root)]
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **(env or {})},
        timeout=1800,
    )


def one_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Ours (cosign.key/.pub, PASSWORD) and someone else's (other.pub)."""
    if not shutil.which("cosign"):
        message = "cosign not on PATH (run scripts/setup-host.sh)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    out: dict[str, Path] = {}
    for who in ("ours", "other"):
        folder = tmp_path_factory.mktemp(f"keys-{who}")
        subprocess.run(
            ["cosign", "generate-key-pair"],
            cwd=folder,
            env={**os.environ, "COSIGN_PASSWORD": PASSWORD},
            capture_output=True,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        out[f"{who}.key"], out[f"{who}.pub"] = folder / "cosign.key", folder / "cosign.pub"
    return out


def fresh_copy(smoked: Path, dest: Path) -> Path:
    shutil.copytree(smoked, dest, ignore=shutil.ignore_patterns("publish"))
    return dest


@pytest.fixture(scope="module")
def signed(smoked, keys, tmp_path_factory):
    """The demo published with --sign into a namespace of its own."""
    project = fresh_copy(smoked, tmp_path_factory.mktemp("signed") / "demo")
    ns = namespace()
    started = time.monotonic()
    proc = cli(
        "publish", "demo", "--registry", ns, "--sign", "--key", keys["ours.key"],
        root=project, env={"COSIGN_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads((project / "build" / "publish" / "demo.json").read_text())
    print(f"publish --sign: {time.monotonic() - started:.1f}s")
    return project, ns, record


def _repo(ns: str) -> str:
    return f"{ns}/demo".split("/", 1)[1]


def test_a_signed_release_verifies_by_tag_and_digest(signed, keys):
    _, ns, record = signed
    assert record["signed"]["by"].startswith("key SHA256:")
    assert record["signed"]["digests"] == [
        record["digest"],
        *(d for _, d in sorted(record["platforms"].items())),
    ]
    assert record["signed"]["attestations"] == ["cyclonedx"]
    content = record["immutable"][0]
    for target in (f"demo:{content}", "demo:latest", f"{ns}/demo@{record['digest']}"):
        started = time.monotonic()
        proc = cli("verify", target, "--registry", ns, "--key", keys["ours.pub"])
        assert proc.returncode == 0, proc.stderr
        [line] = proc.stdout.splitlines()
        assert line.startswith("verified: ") and record["digest"] in line, line
        assert "signed by key " in line and "2 platform manifest(s) signed" in line
        assert line.endswith("SBOM attested")
        assert time.monotonic() - started < 10
    # the signature is cosign's own: cosign itself agrees, for every platform manifest
    for digest in record["signed"]["digests"]:
        subprocess.run(
            ["cosign", "verify", "--key", keys["ours.pub"], "--insecure-ignore-tlog=true",
             f"{ns}/demo@{digest}"],
            capture_output=True, check=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def test_someone_elses_key_does_not_verify(signed, keys):
    _, ns, record = signed
    proc = cli(
        "verify", f"demo:{record['immutable'][0]}", "--registry", ns, "--key", keys["other.pub"]
    )
    assert proc.returncode == 1
    [line] = proc.stdout.splitlines()
    assert line.startswith("not verified: ") and "signed, but not by key" in line, line


def test_publish_sign_again_is_a_noop_and_signs_nothing_twice(signed, keys):
    project, ns, record = signed
    sig_tag = f"sha256-{record['digest'].split(':')[1]}.sig"
    before = Registry(REGISTRY).manifest(_repo(ns), sig_tag)[2]
    proc = cli(
        "publish", "demo", "--registry", ns, "--sign", "--key", keys["ours.key"],
        root=project, env={"COSIGN_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("unchanged:")
    assert Registry(REGISTRY).manifest(_repo(ns), sig_tag)[2] == before


def test_another_digest_retagged_under_a_signed_tag_fails(signed, keys):
    _, ns, record = signed
    client, repo = Registry(REGISTRY), _repo(ns)
    raw, media, _ = client.manifest(repo, record["digest"])
    client.put_manifest(repo, "moved", raw, media)  # a signed digest under a new tag
    ok = cli("verify", "demo:moved", "--registry", ns, "--key", keys["ours.pub"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    other = push_release(client, repo, "9" * 64, ["moved"])  # the tag now names another
    proc = cli("verify", "demo:moved", "--registry", ns, "--key", keys["ours.pub"])
    assert proc.returncode == 1
    [line] = proc.stdout.splitlines()
    assert line == f"not verified: {ns}/demo:moved@{other}: not signed"


def test_a_signature_made_for_another_digest_fails(signed, keys):
    _, ns, record = signed
    client, repo = Registry(REGISTRY), _repo(ns)
    other = push_release(client, repo, "8" * 64, [])
    sig_raw, _, _ = client.manifest(repo, f"sha256-{record['digest'].split(':')[1]}.sig")
    client.put_manifest(repo, f"sha256-{other.split(':')[1]}.sig", sig_raw, OCI_MANIFEST)
    proc = cli("verify", f"{ns}/demo@{other}", "--key", keys["ours.pub"])
    assert proc.returncode == 1
    [line] = proc.stdout.splitlines()
    assert line.endswith("its signature was made for another digest"), line


def test_hub_check_verify_flags_the_unsigned_image_with_its_line(signed, keys, tmp_path):
    _, ns, record = signed
    client, repo = Registry(REGISTRY), _repo(ns)
    unsigned = push_release(client, repo, "7" * 64, ["2020.01.01"])
    config = tmp_path / "values.yaml"
    config.write_text(
        "singleuser:\n"
        "  profileList:\n"
        "    - display_name: Signed\n"
        "      kubespawner_override:\n"
        f"        image: {ns}/demo:{record['immutable'][0]}\n"
        "    - display_name: Unsigned\n"
        "      kubespawner_override:\n"
        f"        image: {ns}/demo:2020.01.01\n"
    )
    hub = tmp_path / "hub"  # a hub admin's repository: no scistacks project
    hub.mkdir()
    proc = cli(
        "hub", "check", config, "--registry", ns, "--verify", "--key", keys["ours.pub"], cwd=hub
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{config}:8: {ns}/demo:2020.01.01 ({unsigned[:19]}) is not signed"
    ]
    assert f"{config}:5: note: {ns}/demo:{record['immutable'][0]}" in proc.stderr
    assert "signed by key" in proc.stderr

    other = cli(
        "hub", "check", config, "--registry", ns, "--verify", "--key", keys["other.pub"], cwd=hub
    )
    assert other.returncode == 1
    lines = other.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{config}:5: ")
    assert "signed, but not by key" in lines[0] and lines[1].endswith("is not signed")

    plain = cli("hub", "check", config, "--registry", ns, cwd=hub)  # no --verify: no cosign
    assert plain.returncode == 0, plain.stdout + plain.stderr


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "case",
    ["missing key file", "no key at all", "wrong password", "no password", "public key"],
)
def test_a_bad_key_is_one_line_and_pushes_nothing(smoked, keys, tmp_path, case):
    project = fresh_copy(smoked, tmp_path / "demo")
    ns = namespace()
    args, env, drop = ["--sign", "--key", keys["ours.key"]], {"COSIGN_PASSWORD": PASSWORD}, ()
    expected = {
        "missing key file": "no such key file",
        "no key at all": "signing needs a key",
        "wrong password": "wrong password for the key",
        "no password": "COSIGN_PASSWORD is not set",
        "public key": "that is a public key",
    }[case]
    if case == "missing key file":
        args = ["--sign", "--key", tmp_path / "nope.key"]
    elif case == "no key at all":
        args, drop = ["--sign"], ("COSIGN_KEY",)
    elif case == "wrong password":
        env = {"COSIGN_PASSWORD": "wrong"}
    elif case == "no password":
        env, drop = {}, ("COSIGN_PASSWORD",)
    else:
        args = ["--sign", "--key", keys["ours.pub"]]
    for command in ("publish", "release"):
        started = time.monotonic()
        proc = cli(command, "demo", "--registry", ns, *args, root=project, env=env, drop=drop)
        assert proc.returncode == 1
        assert expected in one_line(proc), proc.stderr
        assert time.monotonic() - started < 15  # refused before any build or push
    assert Registry(REGISTRY).tags(_repo(ns)) == []
    assert not (project / "build" / "publish" / "demo.json").exists()


def test_verify_without_a_trusted_key_or_a_missing_image_is_one_line(keys):
    ns = namespace()
    proc = cli("verify", "demo:2025.01.01", "--registry", ns)
    assert proc.returncode == 1 and "--key" in one_line(proc)
    proc = cli("verify", "demo:2025.01.01", "--registry", ns, "--key", keys["ours.pub"])
    assert proc.returncode == 1 and "does not exist in the registry" in one_line(proc)
    half = cli("verify", "demo:x", "--registry", ns, "--certificate-identity", "me")
    assert half.returncode == 1 and "--certificate-oidc-issuer" in one_line(half)


def test_a_registry_refusing_the_signature_moves_no_tag(smoked, keys, tmp_path, private_registry):
    """The release is pushed, latest is elsewhere (an interrupted or reverted release),
    then the registry turns read-only: the sign step fails, latest does not move, the
    record claims no signature; once the registry takes writes again, a rerun signs."""
    project = fresh_copy(smoked, tmp_path / "demo")
    private_registry.ensure()
    ns = f"{private_registry.address}/t"
    client, repo = Registry(private_registry.address), "t/demo"
    first = cli("publish", "demo", "--registry", ns, root=project)
    assert first.returncode == 0, first.stderr
    elsewhere = push_release(client, repo, "6" * 64, ["latest"])
    tags_before = {t: client.manifest(repo, t)[2] for t in client.tags(repo)}

    writable = private_registry.config
    private_registry.stop()
    private_registry.config = lambda: writable().replace(
        "  delete:\n    enabled: true\n",
        "  delete:\n    enabled: true\n  maintenance:\n    readonly:\n      enabled: true\n",
    )
    private_registry.ensure()
    proc = cli(
        "publish", "demo", "--registry", ns, "--sign", "--key", keys["ours.key"],
        root=project, env={"COSIGN_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert proc.returncode == 1
    line = one_line(proc)
    assert "the registry refused the upload" in line, line
    assert {t: client.manifest(repo, t)[2] for t in client.tags(repo)} == tags_before
    assert client.manifest(repo, "latest")[2] == elsewhere
    record = json.loads((project / "build" / "publish" / "demo.json").read_text())
    assert record["signed"] == {}

    private_registry.stop()
    private_registry.config = writable
    private_registry.ensure()
    again = cli(
        "publish", "demo", "--registry", ns, "--sign", "--key", keys["ours.key"],
        root=project, env={"COSIGN_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    record = json.loads((project / "build" / "publish" / "demo.json").read_text())
    assert client.manifest(repo, "latest")[2] == record["digest"] != elsewhere
    ok = cli("verify", "demo:latest", "--registry", ns, "--key", keys["ours.pub"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
