"""Stage 4's run: for each platform, reuse the local image of the same platform lock and
engine or write the context and have the engine (``builder.image.engine.ENGINES``) build
it; record what is there now (``builder.image.record``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builder import docker
from builder.errors import BuildError
from builder.image import labels as oci_labels
from builder.image.engine import ENGINES, BuildJob
from builder.image.record import write_record
from builder.lock.channels import ChannelMap
from builder.lock.model import LockedDistribution
from builder.project import ARCHES, Project, conda_platform, oci_platform

if TYPE_CHECKING:
    from builder.spec import Catalog


@dataclass(frozen=True)
class BuiltImage:
    distribution: str
    platform: str  # conda subdir: linux-64, linux-aarch64
    oci_platform: str  # linux/amd64, linux/arm64
    ref: str  # the local tag
    image_id: str  # sha256:...
    lock_hash: str  # of this platform's packages
    engine: str
    skipped: bool = False  # already there: not rebuilt


def arch_of(platform: str) -> str:
    return ARCHES[oci_platform(platform)]


def image_ref(name: str, locked: LockedDistribution, platform: str, tag: str | None = None) -> str:
    """The local name of NAME's image for ``platform``.

    ``tag`` may be a tag or a full reference and may contain ``{arch}``."""
    arch = arch_of(platform)
    if not tag:
        return f"scistacks/{name}:{locked.lock_hash(platform)[:12]}-{arch}"
    ref = tag if (":" in tag.rsplit("/", 1)[-1] or "/" in tag) else f"scistacks/{name}:{tag}"
    return ref.replace("{arch}", arch)


def _platforms(dist, requested: Iterable[str] | None) -> list[str]:
    if not requested:
        wanted = [p for p in dist.platforms if p.startswith("linux-")]
    else:
        wanted = []
        for item in requested:
            for value in str(item).split(","):
                if value.strip():
                    plat = conda_platform(value)
                    if plat not in wanted:
                        wanted.append(plat)
    for plat in wanted:
        oci_platform(plat)  # raises for platforms without container images (osx-arm64...)
        if plat not in dist.platforms:
            raise BuildError(
                f"{dist.name} is not locked for {plat} (its platforms: {', '.join(dist.platforms)})",
                field="--platform",
            )
    if not wanted:
        raise BuildError(
            f"{dist.name} has no linux platform to build an image for", field="--platform"
        )
    return wanted


def build(
    project: Project,
    catalog: Catalog,
    name: str,
    platforms: Iterable[str] | None = None,
    engine: str = "native",
    *,
    channel_map: ChannelMap,
    base_image: str | None = None,
    tag: str | None = None,
    rebuild: bool = False,
    echo: Callable[[str], None] = lambda _: None,
) -> list[BuiltImage]:
    """Build NAME's image for each platform with ``engine``; return what is there now."""
    from builder import lock as locking

    if engine not in ENGINES:
        raise BuildError(
            f"unknown engine {engine!r} (expected {' or '.join(ENGINES)})", field="--engine"
        )
    dist = catalog.get(name)
    wanted = _platforms(dist, platforms)
    stale = locking.check(project, catalog, [name])
    if stale:
        raise BuildError(f"lock is out of date, not building: {stale[0].reason}")
    locked = locking.read_lock(project, name)
    if tag and len(wanted) > 1 and "{arch}" not in tag:
        tag += "-{arch}"  # one tag per platform, never one tag moved between them
    docker.require(BuildError)

    from builder.context import write_context

    built: list[BuiltImage] = []
    for platform in wanted:
        oci = oci_platform(platform)
        ref = image_ref(name, locked, platform, tag)
        platform_hash = locked.lock_hash(platform)
        existing = docker.inspect_image(ref)
        current = (existing or {}).get("Config", {}).get("Labels") or {}
        image_labels = oci_labels.image_labels(project.root, dist, locked, platform, engine)
        # reused only when it carries exactly the labels this build would write: an image
        # of the same lock built from another checkout or commit names other sources
        if (
            existing
            and not rebuild
            and all(current.get(key) == value for key, value in image_labels.items())
            and existing.get("Architecture") == arch_of(platform)
        ):
            echo(f"{name} {oci}: {ref} is up to date (same lock, {engine} engine), skipped")
            built.append(
                BuiltImage(
                    name, platform, oci, ref, existing["Id"], platform_hash, engine, skipped=True
                )
            )
            write_record(project, locked, built)
            continue
        context_dir = write_context(project, catalog, name, platform)
        echo(f"{name} {oci}: building {ref} ({engine} engine)")
        started = time.monotonic()
        ENGINES[engine].build(
            BuildJob(
                project=project,
                dist=dist,
                locked=locked,
                platform=platform,
                oci_platform=oci,
                ref=ref,
                labels=image_labels,
                context_dir=context_dir,
                channel_map=channel_map,
                base_image=base_image,
                echo=echo,
            )
        )
        image_id = docker.image_id(ref)
        if image_id is None:
            raise BuildError(f"{engine} engine finished but there is no image {ref}")
        echo(f"{name} {oci}: {ref} ({image_id[:19]}) built in {time.monotonic() - started:.0f}s")
        built.append(BuiltImage(name, platform, oci, ref, image_id, platform_hash, engine))
        write_record(project, locked, built)
    return built
