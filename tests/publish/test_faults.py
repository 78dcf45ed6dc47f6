"""Publish against registry processes of the test's own: killed mid-push, and one that
wants credentials (which must never show up anywhere they could leak)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import bcrypt
import pytest
from image.demo_support import scistacks

from builder.registry import Registry


def _copy(smoked: Path, dest: Path) -> Path:
    shutil.copytree(smoked, dest, ignore=shutil.ignore_patterns("publish"))
    return dest


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_registry_killed_mid_push_moves_no_tag_and_a_rerun_completes(
    smoked, private_registry, tmp_path
):
    project = _copy(smoked, tmp_path / "demo")
    private_registry.ensure()
    target = f"{private_registry.address}/faults"
    uploads = private_registry.state_dir / "data/docker/registry/v2/repositories/faults/demo"
    # an earlier release that `latest` names: it must still name it after the failure
    client = Registry(private_registry.address)
    earlier = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }
    ).encode()
    for tag in ("2025.01.01", "latest"):
        client.put_manifest("faults/demo", tag, earlier, "application/vnd.oci.image.index.v1+json")
    before = client.manifest("faults/demo", "latest")[2]
    env = {**os.environ, "SCISTACKS_ROOT": str(project)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "builder", "publish", "demo", "--registry", target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not any((uploads / "_uploads").glob("*")):  # layer bytes are on their way
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the push never started"
        time.sleep(0.02)
    private_registry.stop(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=600)  # docker retries each layer for ~50 s first

    assert proc.returncode == 1
    line = _one_line(_errors_only(stderr))
    assert line.startswith("error: ") and private_registry.address in line
    assert not (project / "build" / "publish" / "demo.json").exists()

    private_registry.ensure()  # back, on the same storage
    assert client.manifest("faults/demo", "latest")[2] == before  # latest did not move
    new_tags = set(client.tags("faults/demo")) - {"2025.01.01", "latest"}
    assert not [t for t in new_tags if not t.endswith(("-amd64", "-arm64"))], new_tags

    rerun = scistacks(project, "publish", "demo", "--registry", target)
    assert rerun.returncode == 0, rerun.stderr
    record = json.loads((project / "build" / "publish" / "demo.json").read_text())
    assert client.manifest("faults/demo", "latest")[2] == record["digest"]
    assert set(record["platforms"]) == {"linux/amd64", "linux/arm64"}


def _errors_only(stderr: str) -> str:
    """publish reports progress on stderr too ("pushed … in 3s"); the failure is one line."""
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("pushed "))


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_credentials_never_appear_in_output_contexts_layers_or_the_registry(
    smoked, private_registry, tmp_path
):
    user, password = "ci-bot", f"pw-{uuid.uuid4().hex}"
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    htpasswd.write_text(f"{user}:{hashed}\n")
    private_registry.htpasswd = htpasswd
    private_registry.ensure()
    target = f"{private_registry.address}/private"

    project = _copy(smoked, tmp_path / "demo")
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    outputs = []

    # without credentials: refused, in one line, nothing pushed
    (docker_config / "config.json").write_text("{}")
    env = {"DOCKER_CONFIG": str(docker_config)}
    denied = scistacks(project, "publish", "demo", "--registry", target, env=env)
    assert denied.returncode == 1
    assert "unauthorized" in _one_line(_errors_only(denied.stderr)).lower()

    # with them, in the docker config (for docker push) and the environment (for us)
    auths = {"auths": {private_registry.address: {"auth": encoded}}}
    (docker_config / "config.json").write_text(json.dumps(auths))
    env = {
        "DOCKER_CONFIG": str(docker_config),
        "SCISTACKS_REGISTRY_USER": user,
        "SCISTACKS_REGISTRY_PASSWORD": password,
    }
    for args in (
        ("context", "demo"),
        ("build", "demo", "--platform", "linux/amd64", "--rebuild"),
        ("release", "demo", "--registry", target),  # smoke skipped: same image IDs
        ("profiles", "--registry", target, "--digest"),
    ):
        proc = scistacks(project, *args, env=env)
        assert proc.returncode == 0, (args, proc.stderr)
        outputs.append(proc.stdout + proc.stderr)
    record = json.loads((project / "build" / "publish" / "demo.json").read_text())
    assert record["repository"] == f"{target}/demo"

    secrets = (password.encode(), encoded.encode())

    def assert_clean(data: bytes, where: str) -> None:
        for secret in secrets:
            assert secret not in data, f"credentials leaked into {where}"

    for text in outputs:
        assert_clean(text.encode(), "command output")
    for path in project.rglob("*"):  # contexts, locks, records, smoke reports, profiles
        if path.is_file():
            assert_clean(path.read_bytes(), str(path.relative_to(project)))
    images = json.loads((project / "build" / "images" / "demo.json").read_text())["platforms"]
    for entry in images.values():
        inspect = subprocess.run(
            ["docker", "image", "inspect", entry["ref"]], capture_output=True, check=True
        )
        assert_clean(inspect.stdout, f"the config of {entry['ref']}")  # env, labels, history
        saved = subprocess.run(["docker", "save", entry["ref"]], capture_output=True, check=True)
        assert_clean(saved.stdout, f"the layers of {entry['ref']}")
    for path in (private_registry.state_dir / "data").rglob("*"):  # what was pushed
        if path.is_file():
            assert_clean(path.read_bytes(), "the registry's blobs")
    assert_clean(private_registry.log_file.read_bytes(), "the registry log")
