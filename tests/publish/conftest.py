"""Fixtures of the publish tests: the demo, built and smoke-tested once per session, and
registries of their own (a namespace on the shared one, or a private process to kill)."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_support import REGISTRY
from image.conftest import demo_images, demo_project  # noqa: F401  (fixtures)
from image.demo_support import scistacks

from builder.publish.local_registry import LocalRegistry


def namespace() -> str:
    """A fresh namespace on the shared registry: runs never see each other's tags."""
    return f"{REGISTRY}/test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def smoked(demo_images, demo_project, tmp_path_factory) -> Path:  # noqa: F811
    """A copy of the demo project with both images built and smoke-tested (really).
    Tests that publish from it more than once copy it first."""
    for platform in ("linux/amd64", "linux/arm64"):
        demo_images(platform)
    project = tmp_path_factory.mktemp("publish") / "demo"
    shutil.copytree(demo_project, project)
    proc = scistacks(project, "smoke", "demo")
    assert proc.returncode == 0, proc.stderr
    return project


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def private_registry(tmp_path) -> Iterator[LocalRegistry]:
    """A docker-registry process of this test's own on a free port (to kill, to lock)."""
    registry = LocalRegistry(address=f"127.0.0.1:{free_port()}", state_dir=tmp_path / "registry")
    yield registry
    registry.stop()
