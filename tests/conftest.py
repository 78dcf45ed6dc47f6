"""Shared fixtures for the whole test suite.

Each section below is independent; add new fixtures in a section of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

# ---------------------------------------------------------------- paths

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout: its ``distributions/`` are the shipped specs."""


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


# ---------------------------------------------------------------- projects on disk

SpecText = str | bytes | Mapping


def write_project(
    root: Path,
    specs: Mapping[str, SpecText] | None = None,
    files: Mapping[str, str | bytes] | None = None,
) -> Path:
    """Write a scistacks project folder and return its root.

    ``specs`` maps a distribution name to its ``distribution.yml``: YAML text, raw bytes,
    or a mapping (dumped as YAML). ``files`` maps paths relative to the root to contents
    (scripts, notebooks, environment.yml files...).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "distributions").mkdir(exist_ok=True)
    for name, spec in (specs or {}).items():
        path = root / "distributions" / name / "distribution.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, bytes):
            path.write_bytes(spec)
        elif isinstance(spec, str):
            path.write_text(spec, encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(dict(spec), sort_keys=False), encoding="utf-8")
    for rel, content in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_project({"base": {...}, "child": "name: child..."}, files={...})``.

    Every call makes a new folder under ``tmp_path`` (``subdir`` names it).
    """
    counter = iter(range(1_000_000))

    def make(
        specs: Mapping[str, SpecText] | None = None,
        files: Mapping[str, str | bytes] | None = None,
        subdir: str | None = None,
    ) -> Path:
        return write_project(tmp_path / (subdir or f"project{next(counter)}"), specs, files)

    return make


# ---------------------------------------------------------------- the real CLI


class CliResult(NamedTuple):
    code: int
    stdout: str
    stderr: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_scistacks(
    *args: str | os.PathLike,
    root: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float = 120,
) -> CliResult:
    """Run ``python -m builder [--root ROOT] ARGS...`` in a subprocess, as users do."""
    env = {k: v for k, v in os.environ.items() if k not in ("SCISTACKS_ROOT", "SCISTACKS_DEBUG")}
    env["PYTHONIOENCODING"] = "utf-8"
    command = [sys.executable, "-m", "builder"]
    if root is not None:
        command += ["--root", os.fspath(root)]
    command += [os.fspath(a) for a in args]
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def run_cli() -> Callable[..., CliResult]:
    """``run_cli("validate", root=project)`` -> ``(code, stdout, stderr)``."""
    return run_scistacks


# ---------------------------------------------------------------- a registry process of a test's own


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def private_registry(tmp_path):
    """Debian's docker-registry on a free port, storage in tmp_path: to kill, to lock with
    htpasswd. Not started: call ``.ensure()`` (after setting ``.htpasswd`` if wanted)."""
    from builder.publish.local_registry import LocalRegistry

    registry = LocalRegistry(address=f"127.0.0.1:{free_port()}", state_dir=tmp_path / "registry")
    yield registry
    registry.stop()
