"""Fixtures of the publish tests: the demo, built and smoke-tested once per session, and a
namespace of their own on the shared registry (``private_registry``, a process of the
test's own, is in tests/conftest.py)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from docker_support import REGISTRY
from image.conftest import demo_images, demo_project  # noqa: F401  (fixtures)
from image.demo_support import scistacks


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
