"""Which image each platform tests: the image record ``build/images/NAME.json`` or the
``--image`` references, each inspected (its id, architecture, entrypoint, lock hash)."""

from __future__ import annotations

import platform as host
from collections.abc import Iterable, Sequence

from builder import docker
from builder.errors import RecordError, SmokeError
from builder.project import (
    ARCHES,
    MACHINES,
    OCI_PLATFORMS,
    Project,
    conda_platform,
    oci_platform,
)
from builder.smoke.results import Target
from builder.spec.layering import Distribution


def _host_arch() -> str:
    machine = host.machine().lower()
    by_machine = {m: ARCHES[OCI_PLATFORMS[s]] for s, m in MACHINES.items()} | {"arm64": "arm64"}
    return by_machine.get(machine, machine)


def _describe(target: Target, image: dict) -> None:
    from builder.image.labels import LOCK_HASH, PLATFORM_LOCK_HASH

    config = image.get("Config") or {}
    target.image_id = image.get("Id")
    target.entrypoint = config.get("Entrypoint") or None
    labels = config.get("Labels") or {}
    if target.lock_hash is None:
        target.lock_hash = labels.get(PLATFORM_LOCK_HASH) or labels.get(LOCK_HASH)
    arch = image.get("Architecture")
    if arch != ARCHES.get(target.oci_platform):
        target.problem = f"image {target.ref} is linux/{arch}, not {target.oci_platform}"
    target.emulated = arch != _host_arch()


def _split(values: Iterable[str] | None) -> list[str]:
    return [v.strip() for value in values or () for v in str(value).split(",") if v.strip()]


def resolve_targets(
    project: Project,
    dist: Distribution,
    platforms: Iterable[str] | None = None,
    images: Sequence[str] = (),
) -> tuple[list[Target], str | None]:
    """The image for each platform to test: ``build/images/NAME.json``, or ``--image``.

    A platform whose image is missing gets a ``problem`` (reported as failed); the others
    still run. Returns the targets and the distribution's lock hash from the record."""
    wanted: list[str] = []
    for value in _split(platforms):
        plat = conda_platform(value)
        oci_platform(plat)  # only platforms with container images
        if plat not in wanted:
            wanted.append(plat)
    images = list(images)

    if images:
        if not wanted:
            targets = []
            for ref in images:
                image = docker.inspect_image(ref)
                if image is None:
                    raise SmokeError(
                        f"image {ref} not found locally; pass --platform to report it as "
                        "a failed platform",
                        field="--image",
                    )
                oci = f"linux/{image.get('Architecture')}"
                if oci not in ARCHES:
                    raise SmokeError(
                        f"image {ref} is {oci}: no such image platform", field="--image"
                    )
                targets.append(Target(conda_platform(oci), oci, ref))
        elif len(images) == len(wanted):
            targets = [
                Target(p, oci_platform(p), ref) for p, ref in zip(wanted, images, strict=True)
            ]
        else:
            raise SmokeError(
                f"{len(images)} --image for {len(wanted)} --platform: give one image per platform",
                field="--image",
            )
        for target in targets:
            image = docker.inspect_image(target.ref)
            if image is None:
                target.problem = f"image {target.ref} not found locally"
            else:
                _describe(target, image)
        return targets, None

    from builder.records import ImageRecord

    linux = [p for p in dist.platforms if p in OCI_PLATFORMS]
    for plat in wanted:
        if plat not in dist.platforms:
            raise SmokeError(
                f"{dist.name} is not built for {plat} (its platforms: {', '.join(dist.platforms)})",
                field="--platform",
            )
    wanted = wanted or linux
    if not wanted:
        raise SmokeError(f"{dist.name} has no linux platform, so no image to test")
    try:
        record = ImageRecord.load(project, dist.name)
    except RecordError as exc:
        if project.image_record(dist.name).exists():
            raise  # damaged: rebuilding is the fix
        raise SmokeError(exc.message + " (or pass --image REF)", file=exc.file) from None
    record_file = project.relative(project.image_record(dist.name))
    targets = []
    for plat in wanted:
        entry = record.platforms.get(plat)
        target = Target(plat, oci_platform(plat), entry.ref if entry else None)
        if entry is None:
            target.problem = (
                f"no {target.oci_platform} image in {record_file} "
                f"(build it: scistacks build {dist.name} --platform {target.oci_platform})"
            )
            targets.append(target)
            continue
        target.lock_hash = entry.lock_hash
        image = docker.inspect_image(entry.ref)
        if image is None:
            target.problem = f"image {entry.ref} of {record_file} not found locally"
        else:
            _describe(target, image)
            if not target.problem and entry.image_id != target.image_id:
                # never test one image and report another: publish trusts these results
                target.problem = (
                    f"{entry.ref} is now {target.image_id[:19]}, not {entry.image_id[:19]} as "
                    f"{record_file} says (rebuild: scistacks build {dist.name})"
                )
        targets.append(target)
    return targets, record.lock_hash
