from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REAL = ["base", "pangeo", "r-edu", "gpu-ml"]


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory) -> Path:
    """The bundled conda-forge snapshot, unpacked once per session."""
    unpack = runpy.run_path(str(REPO / "scripts" / "unpack-snapshot.py"))["unpack"]
    return unpack(tmp_path_factory.mktemp("snapshot"))


@pytest.fixture
def real_project(tmp_path) -> Path:
    """A copy of the repository's real distributions and their committed locks."""
    for name in REAL:
        shutil.copytree(REPO / "distributions" / name, tmp_path / "distributions" / name)
        shutil.copytree(REPO / "lockfiles" / name, tmp_path / "lockfiles" / name)
    return tmp_path
