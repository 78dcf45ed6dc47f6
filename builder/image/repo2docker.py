"""The repo2docker engine: the standard way to turn a build context into an image.

It runs repo2docker's own command line on ``images/NAME/PLATFORM/`` with the platform,
the base image, the image name, the notebook user and OCI labels. The Dockerfile it would
build is rendered offline with repo2docker's own code (``--no-build``); the build itself
needs what repo2docker needs at build time:

- a docker daemon with buildx;
- the base image, local or from its registry (repo2docker's default is on Docker Hub);
- anaconda.org (micromamba) and conda.anaconda.org (conda-forge packages).

Those are checked before the build starts, so an offline machine gets one line naming
what it cannot reach instead of a long log ending in a solver or download error.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import logging
import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import yaml

from builder import docker as docker_cli
from builder.errors import BuildError, ScistacksError
from builder.image.conventions import NB_UID, NB_USER
from builder.project import conda_platform, oci_platform

# What repo2docker's conda buildpack can build (it maps exactly these two to conda subdirs).
PLATFORMS = ("linux/amd64", "linux/arm64")
# Hosts every repo2docker conda build downloads from: micromamba itself comes from
# anaconda.org, repo2docker's frozen base environment from conda.anaconda.org/conda-forge.
CONDA_HOSTS = {
    "anaconda.org": "micromamba for repo2docker",
    "conda.anaconda.org": "conda-forge packages",
}
NETWORK_TIMEOUT = 5.0
LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
# Lines of a failed build that say why (searched from the end of the log).
FAILURE = re.compile(
    r"(error|failed|could not|cannot|unable|not found|denied|refused|timed? ?out|resolve)", re.I
)


def default_base_image() -> str:
    """repo2docker's own default base image (an Ubuntu buildpack-deps image on Docker Hub)."""
    from repo2docker.app import Repo2Docker

    return Repo2Docker.base_image.default_value


def _platform(value: str) -> str:
    try:
        oci = oci_platform(conda_platform(value))
    except ScistacksError as exc:
        raise BuildError(exc.message, field="--platform") from None
    if oci not in PLATFORMS:
        raise BuildError(
            f"repo2docker builds {' and '.join(PLATFORMS)} only, not {oci}", field="--platform"
        )
    return oci


def _label_value(value: str) -> str:
    """repo2docker writes labels as ``LABEL key="value"`` into its Dockerfile: escape what
    the Dockerfile parser would read as the end of the string or a variable."""
    value = " ".join(str(value).splitlines())
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


def repo2docker_argv(
    context_dir: str | Path,
    image_ref: str,
    oci_platform: str,
    labels: Mapping[str, str],
    base_image: str | None = None,
    user_id: int = NB_UID,
    user_name: str = NB_USER,
) -> list[str]:
    """The arguments of ``repo2docker`` (without the program name) for one build.

    ``--no-run``: build only. ``--load`` makes buildx leave the image in the local docker
    image store whatever the builder driver."""
    argv = [
        "--no-run",
        "--image-name",
        image_ref,
        f"--Repo2Docker.platform={_platform(oci_platform)}",
        "--user-id",
        str(user_id),
        "--user-name",
        user_name,
    ]
    for key, value in sorted(labels.items()):
        if not LABEL_KEY.match(key):
            raise BuildError(f"invalid image label name {key!r}")
        argv += ["--label", f"{key}={_label_value(value)}"]
    if base_image:
        argv.append(f"--Repo2Docker.base_image={base_image}")
    argv.append("--DockerEngine.extra_buildx_build_args=--load")
    argv.append(str(context_dir))
    return argv


def _require_context(context_dir: str | Path) -> Path:
    folder = Path(context_dir).resolve()
    if not (folder / "environment.yml").is_file():
        raise BuildError(
            "not a build context (no environment.yml; run: scistacks context NAME)",
            file=str(context_dir),
        )
    return folder


def render_dockerfile(
    context_dir: str | Path,
    platform: str,
    base_image: str | None = None,
    labels: Mapping[str, str] | None = None,
    user_id: int = NB_UID,
    user_name: str = NB_USER,
) -> str:
    """The Dockerfile repo2docker builds for this context, rendered by repo2docker itself
    (``--no-build``: buildpack detection and rendering, no docker, no network)."""
    from repo2docker.__main__ import make_r2d

    folder = _require_context(context_dir)
    argv = repo2docker_argv(
        folder, "scistacks-render", platform, labels or {}, base_image, user_id, user_name
    )
    out = io.StringIO()
    try:
        app = make_r2d(["--no-build", *argv])
        app.log_level = logging.WARNING
        app.initialize()
        with contextlib.redirect_stdout(out):
            app.build()
    except SystemExit as exc:
        raise BuildError(
            f"repo2docker refused the arguments (exit {exc.code})", file=str(context_dir)
        ) from None
    except Exception as exc:  # repo2docker's buildpacks raise plain ValueError/RuntimeError
        raise BuildError(
            f"repo2docker cannot render this context: {exc}", file=str(context_dir)
        ) from None
    dockerfile = out.getvalue()
    if "FROM " not in dockerfile:
        raise BuildError("repo2docker rendered no Dockerfile", file=str(context_dir))
    return dockerfile


# ---------------------------------------------------------------- the real build


def _reach(host: str, port: int, what: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=NETWORK_TIMEOUT):
            return
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise BuildError(
            f"cannot reach {host}:{port} ({what}): {reason}; the repo2docker engine needs it at "
            "build time (offline, use --engine native)"
        ) from None


def _registry(image: str) -> tuple[str, int]:
    """Where ``docker pull IMAGE`` goes: Docker Hub unless the first part names a host."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, _, port = first.partition(":")
        if host not in ("docker.io", "index.docker.io"):
            return host, int(port) if port.isdigit() else 443
    return "registry-1.docker.io", 443


def check_base_image(image: str, oci: str) -> None:
    """The base image is in the local store for this platform, or its registry answers."""
    local = docker_cli.inspect_image(image)
    if local and f"{local.get('Os')}/{local.get('Architecture')}" == oci:
        return
    host, port = _registry(image)
    _reach(host, port, f"registry of the base image {image}")


def check_channels(context: Path) -> None:
    """The conda hosts of every repo2docker build and of the context's channels answer."""
    path = context / "environment.yml"
    try:
        env = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BuildError(f"unreadable environment.yml: {exc}", file=str(path)) from None
    hosts = dict(CONDA_HOSTS)
    for channel in env.get("channels") or []:
        url = urlparse(str(channel))
        if url.scheme in ("http", "https") and url.hostname:
            hosts.setdefault(
                f"{url.hostname}:{url.port or (443 if url.scheme == 'https' else 80)}",
                f"channel {channel}",
            )
        elif url.scheme or str(channel).startswith(("/", ".")):
            raise BuildError(
                f"channel {channel} is a local folder: repo2docker installs inside the build "
                "container and cannot read it (use --engine native)",
                file=str(path),
            )
    for host, what in hosts.items():
        name, _, port = host.partition(":")
        _reach(name, int(port) if port else 443, what)


def build_env_for(virtual_packages: Mapping[str, str]) -> dict[str, str]:
    """What the solver inside a build must be told: a GPU-less build machine has no
    ``__cuda``, so a lock that needs one builds with ``CONDA_OVERRIDE_CUDA``."""
    cuda = virtual_packages.get("__cuda")
    return {"CONDA_OVERRIDE_CUDA": str(cuda)} if cuda else {}


def derive_base_image(base_image: str, build_env: Mapping[str, str], oci: str) -> str:
    """A base image that sets ``build_env``: repo2docker has no option to set environment
    variables before it installs the conda environment, but it builds FROM any base."""
    dockerfile = f"FROM {base_image}\n" + "".join(
        f'ENV {k}="{v}"\n' for k, v in sorted(build_env.items())
    )
    digest = hashlib.sha256(f"{oci}\n{dockerfile}".encode()).hexdigest()[:16]
    tag = f"scistacks/repo2docker-base:{digest}"
    docker_cli.run(
        ["buildx", "build", "--platform", oci, "--load", "--tag", tag, "-"],
        what=f"deriving a base image from {base_image} failed",
        error=BuildError,
        input=dockerfile.encode(),
    )
    return tag


def build_with_repo2docker(
    context_dir: str | Path,
    image_ref: str,
    oci_platform: str,
    labels: Mapping[str, str],
    base_image: str | None = None,
    *,
    build_env: Mapping[str, str] | None = None,
) -> None:
    """Build ``image_ref`` from a context with repo2docker; leave it in the local store.

    ``build_env`` (see :func:`build_env_for`) is baked into a derived base image first.
    Any failure is one BuildError line; repo2docker's log streams to stderr meanwhile."""
    folder = _require_context(context_dir)
    oci = _platform(oci_platform)
    base = base_image or default_base_image()
    docker_cli.require(BuildError)
    check_base_image(base, oci)
    check_channels(folder)
    if build_env:
        base = derive_base_image(base, build_env, oci)
    argv = repo2docker_argv(folder, image_ref, oci, labels, base)
    tail: collections.deque[str] = collections.deque(maxlen=200)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "repo2docker", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise BuildError(f"cannot start repo2docker: {exc}") from None
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stderr.write(line)
        tail.append(line.rstrip())
    code = proc.wait()
    if code != 0:
        raise BuildError(
            f"repo2docker build of {image_ref} ({oci}) failed (exit {code}): {_reason(list(tail))}"
        )


def _reason(log: list[str]) -> str:
    """The line of a failed build's log that says why: buildx's ``ERROR:`` line, else the
    last line that sounds like a failure (repo2docker's own traceback left out)."""
    if "Traceback (most recent call last):" in log:
        log = log[: log.index("Traceback (most recent call last):")]
    lines = [ln.strip() for ln in log if ln.strip()]
    for line in reversed(lines):
        if line.startswith("ERROR"):
            return line
    return next(
        (ln for ln in reversed(lines) if FAILURE.search(ln)), lines[-1] if lines else "no output"
    )
