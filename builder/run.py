"""The researcher's end: ``scistacks run NAME[:TAG]`` runs the image a hub runs, locally.

Reads the publish record (``build/publish/NAME.json``) or the build record
(``build/images/NAME.json``) to find the image, or takes a published reference; pulls it
for the docker host's platform when it is not already there; starts its default Jupyter
command with:

- the port published on 127.0.0.1 only (a notebook server is a shell: never on 0.0.0.0);
- the current directory at ``/home/jovyan/work``, written as the caller's uid/gid so the
  files stay theirs (jovyan's home becomes a tmpfs owned by that uid when it is not 1000);
- a random token, passed as ``JUPYTER_TOKEN`` (notebook 6, jupyter_server 1 and 2 read it).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import ScistacksError
from builder.project import Project, conda_platform, oci_platform

HOME = "/home/jovyan"
WORK = f"{HOME}/work"
CONTAINER_PORT = 8888
NB_UID = 1000  # jovyan, as repo2docker and the native engine create it


class RunError(ScistacksError):
    """The image could not be found, pulled or started."""


@dataclass(frozen=True)
class RunPlan:
    image: str
    platform: str  # linux/amd64
    port: int
    token: str
    workdir: Path
    name: str
    user_args: list[str] = field(default_factory=list)
    server_args: list[str] = field(default_factory=list)  # appended to the image's Cmd
    pull: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def docker_argv(self, detach: bool, tty: bool, command: list[str] = ()) -> list[str]:
        """``command``: empty runs the image's own Cmd."""
        argv = ["docker", "run", "--rm", "--name", self.name, "--platform", self.platform]
        argv += ["-d"] if detach else (["-it"] if tty else [])
        argv += ["-p", f"127.0.0.1:{self.port}:{CONTAINER_PORT}"]
        argv += ["-v", f"{self.workdir}:{WORK}", "-w", HOME]
        argv += ["-e", "JUPYTER_TOKEN"]  # the value comes from our environment, not argv
        argv += self.user_args
        return [*argv, self.image, *command]


# ---------------------------------------------------------------- which image


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise RunError("docker is not installed (no `docker` on PATH)") from None
    except subprocess.TimeoutExpired:
        raise RunError(f"docker {args[0]} did not answer within {timeout:.0f}s") from None


def host_platform() -> str:
    """The docker daemon's platform (not Python's: a daemon in a VM may differ)."""
    proc = _docker("version", "--format", "{{.Server.Os}}/{{.Server.Arch}}")
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        raise RunError(f"docker daemon not reachable: {tail}")
    return proc.stdout.strip()


def resolve_image(project: Project | None, target: str, registry: str) -> tuple[str, bool]:
    """(reference, published?) for ``NAME``, ``NAME:TAG`` or ``REG/NS/NAME[:TAG|@DIGEST]``."""
    if "/" in target:
        return target, True
    name, _, tag = target.partition(":")
    if tag:
        return f"{registry.rstrip('/')}/{name}:{tag}", True
    if project is not None:
        published = _json(project.build_dir / "publish" / f"{name}.json")
        if published.get("repository") and published.get("digest"):
            return f"{published['repository']}@{published['digest']}", True
        built = _json(project.build_dir / "images" / f"{name}.json")
        if built.get("platforms"):
            return "", False  # the caller picks the host platform's local build
    return f"{registry.rstrip('/')}/{name}:latest", True


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def local_build(project: Project, name: str, platform: str) -> str:
    platforms = _json(project.build_dir / "images" / f"{name}.json").get("platforms", {})
    for entry in platforms.values():
        if entry.get("oci_platform") == platform:
            return entry["ref"]
    raise RunError(
        f"{name} has no {platform} image (run: scistacks build {name} --platform {platform})",
        file=project.relative(project.build_dir / "images" / f"{name}.json"),
    )


def local_platform(ref: str) -> str | None:
    proc = _docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", ref)
    return proc.stdout.strip() if proc.returncode == 0 else None


def pull(ref: str, platform: str) -> None:
    proc = _docker("pull", "--quiet", "--platform", platform, ref, timeout=3600)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        hint = ""
        if "no matching manifest" in tail:
            other = "linux/amd64" if platform != "linux/amd64" else "linux/arm64"
            hint = f" (it may be built for {other} only: --platform {other} runs it emulated)"
        raise RunError(f"cannot pull {ref} for {platform}: {tail}{hint}")


def image_command(ref: str) -> list[str]:
    proc = _docker("image", "inspect", "--format", "{{json .Config.Cmd}}", ref)
    try:
        return list(json.loads(proc.stdout) or []) if proc.returncode == 0 else []
    except ValueError:
        return []


# ---------------------------------------------------------------- who writes the files


def rootless_docker() -> bool:
    proc = _docker("info", "--format", "{{json .SecurityOptions}}")
    return proc.returncode == 0 and "rootless" in proc.stdout


def user_mapping(uid: int, gid: int, rootless: bool = False) -> tuple[list[str], list[str]]:
    """(docker run options, extra server arguments) so files in work/ belong to uid:gid."""
    if rootless or uid == 0:
        # rootless: container root *is* the caller; root host: keep root's files root's
        return ["--user", "0:0"], ["--allow-root"]
    if uid == NB_UID:
        return ["--user", f"{uid}:{gid}"], []
    # jovyan's home is owned by 1000; a tmpfs owned by the caller keeps it writable
    return [
        "--user",
        f"{uid}:{gid}",
        "-e",
        f"HOME={HOME}",
        "--tmpfs",
        f"{HOME}:uid={uid},gid={gid},mode=0755",
    ], []


# ---------------------------------------------------------------- the port


def free_port(start: int = 8888, tries: int = 100) -> int:
    for port in range(start, start + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RunError(f"no free port in {start}-{start + tries - 1}", field="--port")


# ---------------------------------------------------------------- run


def plan(
    project: Project | None,
    target: str,
    registry: str,
    *,
    workdir: Path,
    port: int | None = None,
    pull_policy: str = "missing",
    uid: int | None = None,
    gid: int | None = None,
    platform: str | None = None,
) -> RunPlan:
    host = host_platform()
    platform = oci_platform(conda_platform(platform)) if platform else host
    ref, published = resolve_image(project, target, registry)
    if not published:
        ref = local_build(project, target, platform)
    have = local_platform(ref)
    if not published:
        if have != platform:
            raise RunError(f"{ref} is gone from docker (run: scistacks build {target})")
        needs_pull = False
    else:
        needs_pull = pull_policy == "always" or (pull_policy == "missing" and have != platform)
        if pull_policy == "never" and have != platform:
            raise RunError(f"{ref} is not here for {platform}, and --pull never was given")
    workdir = workdir.resolve()
    if not workdir.is_dir():
        raise RunError(f"{workdir} is not a directory", field="--workdir")
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    user_args, server_args = user_mapping(uid, gid, rootless_docker())
    if port is None:
        port = free_port()
    elif not 0 < port < 65536:
        raise RunError(f"{port} is not a TCP port", field="--port")
    short = target.rsplit("/", 1)[-1].split("@")[0].replace(":", "-")
    return RunPlan(
        image=ref,
        platform=platform,
        port=port,
        token=secrets.token_hex(24),
        workdir=workdir,
        name=f"scistacks-{short}-{port}",
        user_args=user_args,
        server_args=server_args,
        pull=needs_pull,
    )


def start(run: RunPlan, detach: bool, wait: float = 120.0, echo=lambda _: None) -> int:
    """Pull if needed, then start; detached runs return once the server answers."""
    if run.pull:
        echo(f"pulling {run.image} ({run.platform})")
        pull(run.image, run.platform)
    # the image's Cmd is only known once it is pulled
    command = image_command(run.image) + run.server_args if run.server_args else []
    env = {**os.environ, "JUPYTER_TOKEN": run.token}
    argv = run.docker_argv(detach, tty=os.isatty(0) and os.isatty(1), command=command)
    if not detach:
        echo(f"JupyterLab: {run.url}  (Ctrl-C stops it)")
        return subprocess.run(argv, env=env).returncode
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise RunError(f"cannot start {run.image}: {tail}")
    _wait_until_ready(run, wait)
    return 0


def _wait_until_ready(run: RunPlan, wait: float) -> None:
    deadline = time.monotonic() + wait
    url = f"http://127.0.0.1:{run.port}/api/status?token={run.token}"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if _docker("container", "inspect", run.name).returncode != 0:
            raise RunError(f"{run.image} exited before its server answered")
        time.sleep(0.5)
    subprocess.run(["docker", "rm", "-f", run.name], capture_output=True)
    raise RunError(f"{run.image}: no Jupyter server on port {run.port} after {wait:.0f}s")
