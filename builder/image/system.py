"""The native engine's docker builds: the system image (base image, ``apt.txt``, the
``jovyan`` user) and ``postBuild``, through ``docker buildx build --load``; the layers they
add are normalised later (``builder.image.normalise``), so they carry no build time."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from builder import docker, fsutil
from builder.errors import BuildError
from builder.image import layers
from builder.image.conventions import CONDA_DIR, HOME, NB_UID, NB_USER
from builder.project import ARCHES

Echo = Callable[[str], None]


def apt_packages(context_dir: Path) -> list[str]:
    path = context_dir / "apt.txt"
    if not path.is_file():
        return []
    out: list[str] = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        out += line.split()
    return out


def system_dockerfile(base_image: str, apt: list[str]) -> str:
    lines = [
        "# scistacks native engine: the system part (base image, apt.txt, the jovyan user)",
        f"FROM {base_image}",
        "USER root",
    ]
    if apt:
        lines.append(
            "RUN export DEBIAN_FRONTEND=noninteractive && apt-get update -qq && "
            f"apt-get install -y -qq --no-install-recommends {' '.join(apt)} && "
            "apt-get clean && rm -rf /var/lib/apt/lists/*"
        )
    # repo2docker's user: jovyan, uid/gid 1000, owning /srv/conda and its home; shadow
    # takes the password-change day for /etc/shadow from SOURCE_DATE_EPOCH
    lines.append(
        f"RUN export SOURCE_DATE_EPOCH={layers.source_date_epoch()} && "
        f"if ! getent group {NB_UID} >/dev/null; then groupadd --gid {NB_UID} {NB_USER}; fi && "
        f"if getent passwd {NB_UID} >/dev/null; then "
        f'usermod --login {NB_USER} --home {HOME} --move-home "$(getent passwd {NB_UID} | cut -d: -f1)"; '
        f"else useradd --no-log-init --uid {NB_UID} --gid {NB_UID} --create-home --home-dir {HOME} "
        f"--shell /bin/bash {NB_USER}; fi && "
        f"install -d -o {NB_UID} -g {NB_UID} {HOME} {CONDA_DIR} {CONDA_DIR}/envs"
    )
    return "\n".join(lines) + "\n"


def build_system(base_image: str, apt: list[str], oci_platform: str, work: Path, echo: Echo) -> str:
    context = work / "context"  # the Dockerfile alone: the build copies nothing in
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(system_dockerfile(base_image, apt))
    echo(f"  system image: {base_image} + {len(apt)} apt package(s) ({oci_platform})")
    image = _buildx(work, "build", oci_platform, [str(context)], "building the system image")
    arch = (docker.inspect_image(image) or {}).get("Architecture")
    if arch != ARCHES[oci_platform]:
        raise BuildError(
            f"base image {base_image} is {arch}, not {oci_platform}", field="--base-image"
        )
    return image


def postbuild_dockerfile(image: str) -> str:
    return (
        "# scistacks native engine: postBuild as jovyan, the environment in place\n"
        f"FROM {image}\n"
        f"USER {NB_UID}\n"
        f"WORKDIR {HOME}\n"
        "RUN --mount=type=bind,source=.,target=/tmp/scistacks-context,rw "
        "cd /tmp/scistacks-context && ./postBuild\n"
    )


def layers_above(image: str, base: str) -> frozenset[str]:
    """The diff_ids ``docker build`` added to ``base`` to make ``image``."""
    below = set(((docker.inspect_image(base) or {}).get("RootFS") or {}).get("Layers") or [])
    mine = ((docker.inspect_image(image) or {}).get("RootFS") or {}).get("Layers") or []
    return frozenset(d for d in mine if d not in below)


def post_build(
    image: str, context_dir: Path, oci_platform: str, ref: str, work: Path, echo: Echo
) -> str:
    # FROM needs a name (BuildKit would look an ID up on Docker Hub): a temporary tag
    temporary = f"scistacks-build/{ref.replace('/', '-').replace(':', '-')}:env".lower()
    docker.tag(image, temporary, error=BuildError)
    try:
        dockerfile = work / "postbuild.Dockerfile"
        dockerfile.write_text(postbuild_dockerfile(temporary))
        echo("  postBuild (as jovyan)")
        return _buildx(
            work, "postbuild", oci_platform, ["-f", str(dockerfile), str(context_dir)], "postBuild"
        )
    finally:
        docker.remove(temporary)


def _buildx(work: Path, step: str, oci_platform: str, args: list[str], what: str) -> str:
    """``docker buildx build --load`` for one platform; returns the image id.
    ``$SCISTACKS_NO_CACHE`` set: without docker's build cache, as on a fresh runner."""
    iid = work / f"{step}-image-id"
    iid.unlink(missing_ok=True)
    log = work / f"{step}.log"
    fresh = ["--no-cache"] if os.environ.get("SCISTACKS_NO_CACHE") else []
    docker.run(
        [
            "buildx",
            "build",
            *fresh,
            "--platform",
            oci_platform,
            "--load",
            "--iidfile",
            str(iid),
            *args,
        ],
        what=f"{what} for {oci_platform} (log: {fsutil.shown(log)}) failed",
        error=BuildError,
        log=log,
    )
    return iid.read_text().strip()
