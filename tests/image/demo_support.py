"""Helpers for the image tests: the demo project copied and locked, the CLI in a subprocess.

(A module of its own: test modules cannot import a conftest.py by name.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def scistacks(
    root: Path, *args: str, timeout: float = 1800, env: dict | None = None
) -> subprocess.CompletedProcess:
    """``scistacks --root ROOT ARGS`` in a subprocess, as users run it."""
    base = {k: v for k, v in os.environ.items() if k not in ("SCISTACKS_ROOT", "SCISTACKS_DEBUG")}
    return subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
    )


def copy_demo_project(dest: Path) -> Path:
    """A project holding the repository's demo (spec, bundled channel, lock if committed)
    and its channel map; locked here when the repository has no demo lock yet."""
    shutil.copytree(
        REPO / "distributions" / "demo",
        dest / "distributions" / "demo",
        ignore=shutil.ignore_patterns(".tmp"),
    )
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["scistacks"]
    # the demo's channel and its PyPI index (both folders of distributions/demo/)
    lines = [f'[tool.scistacks]\npypi-index = "{tool["pypi-index"]}"']
    for table in ("channel-map", "pypi-index-map"):
        lines += [f"[tool.scistacks.{table}]"] + [f'"{k}" = "{v}"' for k, v in tool[table].items()]
    (dest / "pyproject.toml").write_text("\n".join(lines) + "\n")
    if (REPO / "lockfiles" / "demo" / "conda-lock.yml").is_file():
        shutil.copytree(REPO / "lockfiles" / "demo", dest / "lockfiles" / "demo")
    if scistacks(dest, "lock", "--check", "demo").returncode != 0:
        proc = scistacks(dest, "lock", "demo")
        assert proc.returncode == 0, proc.stderr
    return dest


@dataclass(frozen=True)
class DemoImage:
    project: Path  # the project it was built from (build/images/demo.json is there)
    oci_platform: str  # linux/amd64
    platform: str  # conda subdir: linux-64
    ref: str  # local tag, e.g. scistacks/demo:<hash>-amd64
    image_id: str
    seconds: float  # how long `scistacks build` took in this session
