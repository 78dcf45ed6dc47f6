"""The docker CLI, as the image stage uses it.

Everything goes through the ``docker`` client (it honours ``DOCKER_HOST`` and contexts, and
buildx is a client plugin anyway). A failing command becomes one ``BuildError`` line with
the tail of docker's own message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from builder.errors import BuildError, ScistacksError, last_line

ARCHES = {"linux/amd64": "amd64", "linux/arm64": "arm64", "linux/ppc64le": "ppc64le"}


def _where() -> str:
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else "the default docker socket"


def require(error: type[ScistacksError] = BuildError, buildx: bool = True) -> None:
    """The daemon answers (and buildx is installed), or one ``error`` line saying what is
    missing. Smoke raises its own error type and needs no buildx."""
    if not shutil.which("docker"):
        raise error("docker client not found on PATH (install docker, see scripts/setup-host.sh)")
    try:
        info = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        info = None
    if info is None or info.returncode != 0 or not info.stdout.strip():
        reason = last_line(info.stderr) if info is not None else "timed out"
        raise error(
            f"docker daemon not reachable at {_where()} ({reason}); start dockerd "
            "or run scripts/setup-host.sh"
        )
    if not buildx:
        return
    found = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True)
    if found.returncode != 0:
        raise error(
            "docker buildx missing (the docker CLI plugin; scripts/setup-host.sh installs it)"
        )


def run(
    args: Sequence[str], *, what: str, input: bytes | None = None, log: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``docker ARGS``; on failure, a BuildError naming ``what`` and docker's last line.

    With ``log``, docker's whole output goes to that file (builds are long and chatty)."""
    cmd = ["docker", *args]
    if log is None:
        proc = subprocess.run(cmd, input=input, capture_output=True)
        output = proc.stderr.decode(errors="replace")
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as fh:
            proc = subprocess.run(cmd, input=input, stdout=fh, stderr=subprocess.STDOUT)
        output = log.read_text(errors="replace")
    if proc.returncode != 0:
        raise BuildError(
            f"{what} failed: {last_line(output) or f'docker exited {proc.returncode}'}"
        )
    return proc


def inspect_image(ref: str, timeout: float | None = None) -> dict | None:
    """``docker image inspect REF`` as a dict, or None when there is no such image."""
    proc = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout or b"[]")
    return data[0] if data else None


def image_id(ref: str) -> str | None:
    data = inspect_image(ref)
    return data["Id"] if data else None


def tag(image: str, ref: str) -> None:
    run(["tag", image, ref], what=f"docker tag {ref}")


def remove(ref: str) -> None:
    """Untag or remove quietly (clean-up of temporary names; never the user's images)."""
    subprocess.run(["docker", "image", "rm", "--no-prune", ref], capture_output=True)
