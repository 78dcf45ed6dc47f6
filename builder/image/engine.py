"""The engines that turn one platform's build context into a local image, behind one
interface: the stage hands an ``Engine`` a ``BuildJob`` and finds the image under
``job.ref`` afterwards. ``ENGINES`` is the registry ``--engine`` chooses from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from builder.lock.channels import ChannelMap
from builder.lock.model import LockedDistribution
from builder.project import ARCHES, Project
from builder.spec.layering import Distribution


@dataclass(frozen=True)
class BuildJob:
    """Everything one engine run needs, for one platform."""

    project: Project
    dist: Distribution
    locked: LockedDistribution
    platform: str  # conda subdir: linux-64, linux-aarch64
    oci_platform: str  # linux/amd64, linux/arm64
    ref: str  # the local tag the image gets once built
    labels: Mapping[str, str]
    context_dir: Path  # images/NAME/PLATFORM/
    channel_map: ChannelMap
    base_image: str | None = None  # --base-image; None: the engine's (or spec's) default
    echo: Callable[[str], None] = lambda _: None

    @property
    def arch(self) -> str:
        return ARCHES[self.oci_platform]


class Engine(Protocol):
    name: str

    def build(self, job: BuildJob) -> None:
        """Build ``job.ref``, or raise a one-line ``BuildError``."""


class NativeEngine:
    """``builder.image.native``: the lock, exactly, with reproducible layers."""

    name = "native"

    def build(self, job: BuildJob) -> None:
        from builder.image import native  # imports rattler: only when it builds

        native.build(
            job.project,
            job.dist,
            job.locked,
            job.platform,
            ref=job.ref,
            oci_platform=job.oci_platform,
            labels=dict(job.labels),
            base_image=native.default_base_image(job.dist, job.arch, job.base_image),
            context_dir=job.context_dir,
            channel_map=job.channel_map,
            echo=job.echo,
        )


class Repo2DockerEngine:
    """``builder.image.repo2docker``: the reference tool (needs conda-forge online)."""

    name = "repo2docker"

    def build(self, job: BuildJob) -> None:
        from builder.image.repo2docker import build_env_for, build_with_repo2docker

        build_with_repo2docker(
            job.context_dir,
            job.ref,
            job.oci_platform,
            job.labels,
            base_image=job.base_image,
            build_env=build_env_for(job.dist.virtual_packages),
        )


ENGINES: dict[str, Engine] = {e.name: e for e in (NativeEngine(), Repo2DockerEngine())}
