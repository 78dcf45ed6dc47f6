"""Session fixtures of the image tests: the demo, locked and built once per platform.

``demo_images(platform)`` builds the demo's image for ``platform`` ("linux/amd64" or
"linux/arm64") the first time a test asks for it and hands every later caller the same
image: the arm64 build runs its apt step under qemu (minutes when docker's cache is cold),
so only tests that need arm64 pay for it. Tests using it must carry ``@pytest.mark.docker``
(and ``arm64`` for arm64).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from image.demo_support import DemoImage, copy_demo_project, scistacks


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory) -> Path:
    """A locked copy of the demo project; treat it as read-only (copy it to change it)."""
    return copy_demo_project(tmp_path_factory.mktemp("demo-project"))


@pytest.fixture(scope="session")
def demo_images(demo_project: Path) -> Callable[[str], DemoImage]:
    """``demo_images("linux/amd64") -> DemoImage``: built with the native engine, once."""
    built: dict[str, DemoImage] = {}

    def get(oci_platform: str) -> DemoImage:
        if oci_platform not in built:
            started = time.monotonic()
            # --rebuild: every session really runs the engine (docker's cache keeps it short)
            proc = scistacks(demo_project, "build", "demo", "--platform", oci_platform, "--rebuild")
            seconds = time.monotonic() - started
            if proc.returncode != 0:
                pytest.fail(
                    f"scistacks build demo --platform {oci_platform} failed:\n{proc.stderr}"
                )
            record = json.loads((demo_project / "build" / "images" / "demo.json").read_text())
            platform = {"linux/amd64": "linux-64", "linux/arm64": "linux-aarch64"}[oci_platform]
            entry = record["platforms"][platform]
            built[oci_platform] = DemoImage(
                demo_project, oci_platform, platform, entry["ref"], entry["image_id"], seconds
            )
        return built[oci_platform]

    return get
