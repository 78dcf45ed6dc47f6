"""git: the one module that runs it (tests/test_boundaries.py checks).

``run`` is for commands that must work (``lock diff --base``, the CI matrix): a failure is
one ScistacksError line. ``output`` is for what an image only notes when it can (its
revision, its source): no git, no repository or no answer gives None.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from builder.errors import ScistacksError


def _git(root: Path, args: tuple[str, ...], timeout: float | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=timeout
    )


def run(root: Path, *args: str, check: bool = True, field: str | None = None) -> str:
    """``git -C ROOT ARGS``'s output; ``field`` names the option that needed git."""
    try:
        proc = _git(root, args, None)
    except FileNotFoundError:
        needed = f" (needed for {field})" if field else ""
        raise ScistacksError(f"git is not installed{needed}") from None
    if check and proc.returncode != 0:
        # git's first line says what is wrong ("fatal: ..."); usage hints follow it
        reason = (proc.stderr.strip() or proc.stdout.strip() or "failed").splitlines()[0]
        raise ScistacksError(f"git {args[0]}: {reason}", field=field)
    return proc.stdout


def output(root: Path, *args: str, timeout: float = 10) -> str | None:
    """``git -C ROOT ARGS``'s output, stripped; None when git cannot tell."""
    try:
        proc = _git(root, args, timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = proc.stdout.strip()
    return out if proc.returncode == 0 and out else None


def head(root: Path) -> str | None:
    """The checked-out commit."""
    return output(root, "rev-parse", "HEAD")


def origin(root: Path) -> str | None:
    """The ``origin`` remote's URL, as configured (a URL, a path or ``host:path``)."""
    return output(root, "remote", "get-url", "origin")
