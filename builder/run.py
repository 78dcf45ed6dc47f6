"""The researcher's end: ``scistacks run NAME[:TAG]`` runs the image a hub runs, locally.

Reads the publish record (``build/publish/NAME.json``) or the build record
(``build/images/NAME.json``) to find the image, or takes a published reference; pulls it
for the docker host's platform when it is not already there; starts its default Jupyter
command with:

- the port published on 127.0.0.1 only (a notebook server is a shell: never on 0.0.0.0);
- the current directory at ``/home/jovyan/work``, written as the caller's uid/gid so the
  files stay theirs (jovyan's home becomes a tmpfs owned by that uid when it is not 1000);
  started as root, the server runs as the image's user (uid 1000), never as root unless
  ``--as-root`` asks for it (see ``user_mapping``);
- a random token, passed as ``JUPYTER_TOKEN`` (notebook 6, jupyter_server 1 and 2 read it).
"""

from __future__ import annotations

import os
import secrets
import socket
import stat
import struct
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from builder import docker
from builder.errors import ScistacksError
from builder.image.conventions import HOME, NB_UID
from builder.project import Project, conda_platform, oci_platform
from builder.records import ImageRecord, PublishRecord

WORK = f"{HOME}/work"
CONTAINER_PORT = 8888


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
    grant_write: bool = False  # let uid 1000 write to workdir (an ACL entry) before starting

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def docker_args(self, detach: bool, tty: bool, command: list[str] = ()) -> list[str]:
        """``docker run``'s arguments; ``command``: empty runs the image's own Cmd."""
        argv = ["run", "--rm", "--name", self.name, "--platform", self.platform]
        argv += ["-d"] if detach else (["-it"] if tty else [])
        argv += ["-p", f"127.0.0.1:{self.port}:{CONTAINER_PORT}"]
        argv += ["-v", f"{self.workdir}:{WORK}", "-w", HOME]
        argv += ["-e", "JUPYTER_TOKEN"]  # the value comes from our environment, not argv
        argv += self.user_args
        return [*argv, self.image, *command]


# ---------------------------------------------------------------- which image


def host_platform() -> str:
    """The docker daemon's platform (not Python's: a daemon in a VM may differ)."""
    return docker.server_platform(RunError)


def resolve_image(project: Project | None, target: str, registry: str) -> tuple[str, bool]:
    """(reference, published?) for ``NAME``, ``NAME:TAG`` or ``REG/NS/NAME[:TAG|@DIGEST]``."""
    if "/" in target:
        return target, True
    name, _, tag = target.partition(":")
    if tag:
        return f"{registry.rstrip('/')}/{name}:{tag}", True
    # a missing record says "not published" or "not built"; a damaged one is an error
    if project is not None:
        if project.publish_record(name).is_file():
            published = PublishRecord.load(project, name)
            return f"{published.repository}@{published.digest}", True
        if project.image_record(name).is_file() and ImageRecord.load(project, name).platforms:
            return "", False  # the caller picks the host platform's local build
    return f"{registry.rstrip('/')}/{name}:latest", True


def local_build(project: Project, name: str, platform: str) -> str:
    for entry in ImageRecord.load(project, name).platforms.values():
        if entry.oci_platform == platform:
            return entry.ref
    raise RunError(
        f"{name} has no {platform} image (run: scistacks build {name} --platform {platform})",
        file=project.relative(project.image_record(name)),
    )


def local_platform(ref: str) -> str | None:
    image = docker.inspect_image(ref, error=RunError)
    return f"{image.get('Os')}/{image.get('Architecture')}" if image else None


def pull(ref: str, platform: str) -> None:
    proc = docker.call(
        ["pull", "--quiet", "--platform", platform, ref], error=RunError, timeout=3600
    )
    if proc.returncode != 0:
        tail = docker.reason(proc)
        hint = ""
        if "no matching manifest" in tail:
            other = "linux/amd64" if platform != "linux/amd64" else "linux/arm64"
            hint = f" (it may be built for {other} only: --platform {other} runs it emulated)"
        raise RunError(f"cannot pull {ref} for {platform}: {tail}{hint}")


def image_command(ref: str) -> list[str]:
    image = docker.inspect_image(ref, error=RunError) or {}
    return list((image.get("Config") or {}).get("Cmd") or [])


# ---------------------------------------------------------------- who writes the files


def rootless_docker() -> bool:
    proc = docker.call(["info", "--format", "{{json .SecurityOptions}}"], error=RunError)
    return proc.returncode == 0 and "rootless" in proc.stdout


def user_mapping(
    uid: int, gid: int, rootless: bool = False, as_root: bool = False
) -> tuple[list[str], list[str]]:
    """(docker run options, extra server arguments) so files in work/ belong to uid:gid.

    Started as root, the server runs as the image's user, jovyan (uid/gid 1000), as a hub
    runs it: a notebook server is a shell, and a root one in the caller's folder can
    change anything there. docker-stacks images get the folder writable by starting as
    root and chowning (``NB_UID``, ``CHOWN_HOME``/``CHOWN_EXTRA``); chowning the folder of
    a root caller would hand its files to uid 1000 behind its back, so ``grant_write``
    adds one ACL entry (``user:1000:rwx``) on the mounted folder itself instead, and only
    when uid 1000 cannot write there already: no file changes owner, nothing below the
    folder changes at all, files made in JupyterLab belong to uid 1000 and files already
    there stay root's (``ls -l`` shows a ``+`` and the ACL mask as the group bits;
    ``getfacl DIR`` shows the entry, ``setfacl -x u:1000 DIR`` removes it).
    ``as_root`` (``--as-root``) keeps the server root (``--allow-root``), files root's.
    """
    if rootless or as_root:
        # rootless: container root *is* the caller
        return ["--user", "0:0"], ["--allow-root"]
    if uid == 0:
        return ["--user", f"{NB_UID}:{NB_UID}"], []
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


# POSIX access ACL as the kernel stores it (xattr system.posix_acl_access): a version, then
# (tag, permissions, id) entries sorted by tag then id
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_NO_ID = 0xFFFFFFFF


def writable_by(path: Path, uid: int) -> bool:
    """Whether ``uid`` (not root) may create files in the directory ``path``."""
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IWUSR and st.st_mode & stat.S_IXUSR)
    entries = _read_acl(path)
    named = {i: perm for tag, perm, i in entries if tag == _USER}
    if uid in named:
        mask = next((perm for tag, perm, _ in entries if tag == _MASK), 7)
        return named[uid] & mask & 3 == 3
    if st.st_gid == uid:  # jovyan's group has jovyan's id
        return bool(st.st_mode & stat.S_IWGRP and st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IWOTH and st.st_mode & stat.S_IXOTH)


def _read_acl(path: Path) -> list[tuple[int, int, int]]:
    try:
        data = os.getxattr(path, _ACL_XATTR)
    except OSError:
        return []
    return [struct.unpack_from("<HHI", data, off) for off in range(4, len(data), 8)]


def grant_write(path: Path, uid: int) -> None:
    """Add ``user:UID:rwx`` to the directory's access ACL (ownership and mode unchanged)."""
    mode = path.stat().st_mode
    entries = [e for e in _read_acl(path) if not (e[0] == _USER and e[2] == uid)]
    if not entries:  # no ACL yet: the one the mode bits stand for
        entries = [
            (_USER_OBJ, (mode >> 6) & 7, _NO_ID),
            (_GROUP_OBJ, (mode >> 3) & 7, _NO_ID),
            (_OTHER, mode & 7, _NO_ID),
        ]
    entries = [e for e in entries if e[0] != _MASK] + [(_USER, 7, uid)]
    group_class = 0
    for tag, perm, _ in entries:
        if tag in (_USER, _GROUP_OBJ, _GROUP):
            group_class |= perm
    entries.append((_MASK, group_class, _NO_ID))
    entries.sort(key=lambda e: (e[0], e[2]))
    data = struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)
    try:
        os.setxattr(path, _ACL_XATTR, data)
    except OSError as exc:
        raise RunError(
            f"cannot let uid {NB_UID} (the image's user) write to {path}: {exc.strerror}"
            " (use --as-root to run the server as root, or make it writable)",
            field="--workdir",
        ) from None


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
    as_root: bool = False,
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
    rootless = rootless_docker()
    user_args, server_args = user_mapping(uid, gid, rootless, as_root)
    # root runs the server as jovyan: it needs to write to work/ (see user_mapping)
    grant = uid == 0 and not (rootless or as_root) and not writable_by(workdir, NB_UID)
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
        grant_write=grant,
    )


def start(run: RunPlan, detach: bool, wait: float = 120.0, echo=lambda _: None) -> int:
    """Pull if needed, then start; detached runs return once the server answers."""
    if run.grant_write:
        grant_write(run.workdir, NB_UID)
        echo(f"{run.workdir}: uid {NB_UID} (the image's user) may now write here (an ACL entry)")
    if run.pull:
        echo(f"pulling {run.image} ({run.platform})")
        pull(run.image, run.platform)
    # the image's Cmd is only known once it is pulled
    command = image_command(run.image) + run.server_args if run.server_args else []
    env = {**os.environ, "JUPYTER_TOKEN": run.token}
    args = run.docker_args(detach, tty=os.isatty(0) and os.isatty(1), command=command)
    if not detach:
        echo(f"JupyterLab: {run.url}  (Ctrl-C stops it)")
        return docker.foreground(args, error=RunError, env=env)
    docker.run(args, what=f"cannot start {run.image}", error=RunError, env=env)
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
        if docker.call(["container", "inspect", run.name], error=RunError).returncode != 0:
            raise RunError(f"{run.image} exited before its server answered")
        time.sleep(0.5)
    docker.quiet(["rm", "-f", run.name])
    raise RunError(f"{run.image}: no Jupyter server on port {run.port} after {wait:.0f}s")
