"""The docker CLI: the one module that runs it (tests/test_boundaries.py checks).

Everything goes through the ``docker`` client (it honours ``DOCKER_HOST`` and contexts, and
buildx is a client plugin anyway). Arguments come without the leading ``docker``. A missing
client, a daemon that does not answer or a command that times out is one line of the
caller's ``error`` type; a failed command quotes docker's last line (``errors.last_line``).

- ``run``: a command that must succeed; ``call``: one whose exit status the caller reads;
  ``quiet``: clean-up that never raises;
- ``inspect_image``, ``image_id``, ``tag``, ``remove``: the local image store;
- ``Container``: a long-running ``docker run`` (smoke), ``foreground``: one on the
  terminal (``scistacks run``); ``save_load``: ``docker save | rewrite | docker load``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

from builder.errors import ScistacksError, last_line

NOT_INSTALLED = "docker is not installed (no `docker` on PATH)"

Error = type[ScistacksError]
T = TypeVar("T")


def available() -> bool:
    return shutil.which("docker") is not None


def _exec(args: Sequence[str], error: Error, timeout: float | None, **kwargs):
    try:
        return subprocess.run(["docker", *args], timeout=timeout, **kwargs)
    except FileNotFoundError:
        raise error(NOT_INSTALLED) from None
    except subprocess.TimeoutExpired:
        raise error(f"docker {args[0]} did not answer within {timeout:.0f}s") from None


def reason(proc: subprocess.CompletedProcess) -> str:
    """Why a docker command failed: its last line of stderr, else its exit status."""
    return last_line(proc.stderr) or f"docker exited {proc.returncode}"


def call(
    args: Sequence[str],
    *,
    error: Error = ScistacksError,
    timeout: float | None = 60,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``docker ARGS`` with text output; the caller reads the exit status."""
    return _exec(args, error, timeout, capture_output=True, text=True, env=env)


def run(
    args: Sequence[str],
    *,
    what: str,
    error: Error = ScistacksError,
    input: bytes | None = None,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``docker ARGS``, which must succeed: else ``error("WHAT: docker's last line")``.

    With ``log``, docker's whole output goes to that file (builds are long and chatty)."""
    if log is None:
        proc = _exec(args, error, None, input=input, capture_output=True, env=env)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as fh:
            proc = _exec(
                args, error, None, input=input, stdout=fh, stderr=subprocess.STDOUT, env=env
            )
        proc.stderr = log.read_bytes()
    if proc.returncode != 0:
        raise error(f"{what}: {reason(proc)}")
    return proc


def quiet(args: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess | None:
    """Clean-up (``rm -f``, ``kill``): never raises, None when docker did not answer."""
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None


# -- the daemon --------------------------------------------------------------------------


def _where() -> str:
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else "the default docker socket"


def server(error: Error = ScistacksError) -> dict:
    """The daemon's ``docker version`` (Os, Arch, Version...), or one ``error`` line."""
    if not available():
        raise error(NOT_INSTALLED)
    try:
        proc = call(["version", "--format", "{{json .Server}}"], error=error, timeout=30)
    except ScistacksError:
        proc = None
    try:
        found = json.loads(proc.stdout) if proc is not None and proc.returncode == 0 else None
    except ValueError:
        found = None
    if not isinstance(found, dict):
        why = (last_line(proc.stderr) or "no answer") if proc is not None else "timed out"
        raise error(
            f"docker daemon not reachable at {_where()} ({why}); start dockerd "
            "or run scripts/setup-host.sh"
        )
    return found


def require(error: Error = ScistacksError, buildx: bool = True) -> None:
    """The daemon answers (and buildx is installed), or one ``error`` line saying what is
    missing (smoke needs no buildx)."""
    server(error)
    if buildx and call(["buildx", "version"], error=error).returncode != 0:
        raise error(
            "docker buildx missing (the docker CLI plugin; scripts/setup-host.sh installs it)"
        )


def server_platform(error: Error = ScistacksError) -> str:
    """The daemon's platform (not Python's: a daemon in a VM may differ), ``linux/amd64``."""
    found = server(error)
    return f"{found.get('Os')}/{found.get('Arch')}"


# -- the local image store ---------------------------------------------------------------


def inspect_image(
    ref: str, *, error: Error = ScistacksError, timeout: float | None = 60
) -> dict | None:
    """``docker image inspect REF`` as a dict, or None when there is no such image."""
    proc = call(["image", "inspect", ref], error=error, timeout=timeout)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout or "[]")
    return data[0] if data else None


def image_id(ref: str, *, error: Error = ScistacksError) -> str | None:
    data = inspect_image(ref, error=error)
    return data["Id"] if data else None


def tag(image: str, ref: str, *, error: Error = ScistacksError) -> None:
    run(["tag", image, ref], what=f"docker tag {ref} failed", error=error)


def remove(ref: str) -> None:
    """Untag or remove quietly (clean-up of temporary names; never the user's images)."""
    quiet(["image", "rm", "--no-prune", ref])


# -- containers --------------------------------------------------------------------------


class Container:
    """A ``docker run`` in the background, its output into files: wait for it with a
    timeout, stop it by name (``docker kill``: killing the client leaves the container)."""

    def __init__(
        self, args: Sequence[str], name: str, stdout: IO, stderr: IO, error: Error = ScistacksError
    ):
        self.name = name
        try:
            self._proc = subprocess.Popen(
                ["docker", *args], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
            )
        except FileNotFoundError:
            raise error(NOT_INSTALLED) from None

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None while it is still running after ``timeout`` seconds."""
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float) -> int:
        """Kill the container, give the client ``grace`` seconds to exit, then kill it."""
        quiet(["kill", self.name], timeout=grace)
        code = self.wait(grace)
        if code is None:
            self._proc.kill()
            code = self._proc.wait()
        return code

    def abort(self, grace: float) -> None:
        """Interrupted: neither the client nor the container may outlive us."""
        quiet(["kill", self.name], timeout=grace)
        self._proc.kill()
        self._proc.wait()
        quiet(["rm", "-f", self.name])


def foreground(
    args: Sequence[str], *, error: Error = ScistacksError, env: Mapping[str, str] | None = None
) -> int:
    """``docker ARGS`` on this terminal (Ctrl-C reaches it); its exit status."""
    return _exec(args, error, None, env=env).returncode


# -- docker save | rewrite | docker load -------------------------------------------------


def save_load(
    image: str, rewrite: Callable[[IO[bytes], IO[bytes]], T], error: Error = ScistacksError
) -> tuple[T, str]:
    """Stream ``docker save IMAGE`` through ``rewrite(saved, to_load)`` into ``docker load``;
    (what ``rewrite`` returned, docker load's output). An archive that breaks off means one
    of the two failed: the error quotes it."""
    with tempfile.TemporaryFile() as save_err, tempfile.TemporaryFile() as load_out:
        try:
            save = subprocess.Popen(
                ["docker", "save", image], stdout=subprocess.PIPE, stderr=save_err
            )
            load = subprocess.Popen(
                ["docker", "load"], stdin=subprocess.PIPE, stdout=load_out, stderr=subprocess.STDOUT
            )
        except FileNotFoundError:
            raise error(NOT_INSTALLED) from None
        try:
            result = rewrite(save.stdout, load.stdin)
            load.stdin.close()
        except BaseException as exc:
            for proc in (save, load):
                proc.kill()
                proc.wait()
            if not isinstance(exc, (BrokenPipeError, tarfile.TarError)):
                raise
            save_err.seek(0)
            load_out.seek(0)
            detail = last_line(load_out.read() or save_err.read())
            raise error(
                f"moving the image through docker save/load failed: {detail or exc}"
            ) from None
        save.wait()
        load.wait()
        save_err.seek(0)
        load_out.seek(0)
        if save.returncode != 0:
            raise error(f"docker save {image} failed: {last_line(save_err.read())}")
        output = load_out.read().decode(errors="replace")
        if load.returncode != 0:
            raise error(f"docker load failed: {last_line(output)}")
    return result, output
