"""Stage 4: image. Reads ``lockfiles/NAME/`` and the build context ``images/NAME/PLATFORM/``,
leaves one tagged local image per platform and writes ``build/images/NAME.json``.

Two engines build from the same context: ``native`` (``builder.image.native``: the lock,
exactly, with reproducible layers) and ``repo2docker`` (``builder.image.repo2docker``: the
reference tool, needs conda-forge online). Both get the same labels
(``builder.image.labels``) and the same local name::

    scistacks/NAME:<platform lock hash[:12]>-<arch>

A platform whose image already exists with the same platform lock hash and engine is
skipped, unless ``rebuild``. The record file lists what is there now, for ``smoke`` and
``publish``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from builder.errors import BuildError
from builder.fsutil import write_atomic
from builder.image import docker
from builder.image import labels as oci_labels
from builder.lock.channels import ChannelMap
from builder.lock.model import LockedDistribution
from builder.project import Project, conda_platform, oci_platform

ENGINES = ("native", "repo2docker")


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
    return docker.ARCHES[oci_platform(platform)]


def image_ref(name: str, locked: LockedDistribution, platform: str, tag: str | None = None) -> str:
    """The local name of NAME's image for ``platform``.

    ``tag`` may be a tag or a full reference and may contain ``{arch}``."""
    arch = arch_of(platform)
    if not tag:
        return f"scistacks/{name}:{locked.lock_hash(platform)[:12]}-{arch}"
    ref = tag if (":" in tag.rsplit("/", 1)[-1] or "/" in tag) else f"scistacks/{name}:{tag}"
    return ref.replace("{arch}", arch)


def record_path(project: Project, name: str) -> Path:
    return project.build_dir / "images" / f"{name}.json"


def read_record(project: Project, name: str) -> dict:
    """``build/images/NAME.json``: what ``scistacks build`` left, per platform."""
    path = record_path(project, name)
    if not path.is_file():
        raise BuildError(
            f"no images built for {name!r} (run: scistacks build {name})",
            file=project.relative(path),
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BuildError(f"not valid JSON: {exc}", file=project.relative(path)) from None


def _write_record(project: Project, locked: LockedDistribution, built: list[BuiltImage]) -> None:
    path = record_path(project, locked.name)
    platforms: dict[str, dict] = {}
    if path.is_file():
        try:
            previous = json.loads(path.read_text()).get("platforms", {})
        except (json.JSONDecodeError, AttributeError):
            previous = {}
        # keep other platforms' images only while they still match the lock
        for plat, entry in previous.items():
            if plat in locked.packages and entry.get("lock_hash") == locked.lock_hash(plat):
                platforms[plat] = entry
    for image in built:
        entry = asdict(image)
        for key in ("distribution", "platform", "skipped"):
            entry.pop(key)
        platforms[image.platform] = entry
    _save_record(path, locked.name, locked.lock_hash(), platforms)


def _save_record(path: Path, name: str, lock_hash: str, platforms: dict[str, dict]) -> dict:
    record = {
        "distribution": name,
        "lock_hash": lock_hash,
        "platforms": dict(sorted(platforms.items())),
    }
    write_atomic(path, json.dumps(record, indent=2) + "\n")
    return record


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
    catalog,
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
    docker.require()

    from builder.context import write_context

    built: list[BuiltImage] = []
    for platform in wanted:
        oci = oci_platform(platform)
        ref = image_ref(name, locked, platform, tag)
        platform_hash = locked.lock_hash(platform)
        existing = docker.inspect_image(ref)
        current = (existing or {}).get("Config", {}).get("Labels") or {}
        if (
            existing
            and not rebuild
            and current.get(oci_labels.PLATFORM_LOCK_HASH) == platform_hash
            and current.get(oci_labels.ENGINE) == engine
            and existing.get("Architecture") == arch_of(platform)
        ):
            echo(f"{name} {oci}: {ref} is up to date (same lock, {engine} engine), skipped")
            built.append(
                BuiltImage(
                    name, platform, oci, ref, existing["Id"], platform_hash, engine, skipped=True
                )
            )
            _write_record(project, locked, built)
            continue
        context_dir = write_context(project, catalog, name, platform)
        image_labels = oci_labels.image_labels(project.root, dist, locked, platform, engine)
        echo(f"{name} {oci}: building {ref} ({engine} engine)")
        started = time.monotonic()
        if engine == "native":
            from builder.image import native

            base = native.default_base_image(dist, arch_of(platform), base_image)
            native.build(
                project,
                dist,
                locked,
                platform,
                ref=ref,
                oci_platform=oci,
                labels=image_labels,
                base_image=base,
                context_dir=context_dir,
                channel_map=channel_map,
                echo=echo,
            )
        else:
            from builder.image.repo2docker import build_env_for, build_with_repo2docker

            build_with_repo2docker(
                context_dir,
                ref,
                oci,
                image_labels,
                base_image=base_image,
                build_env=build_env_for(dist.virtual_packages),
            )
        image_id = docker.image_id(ref)
        if image_id is None:
            raise BuildError(f"{engine} engine finished but there is no image {ref}")
        echo(f"{name} {oci}: {ref} ({image_id[:19]}) built in {time.monotonic() - started:.0f}s")
        built.append(BuiltImage(name, platform, oci, ref, image_id, platform_hash, engine))
        _write_record(project, locked, built)
    return built


def merge_records(project: Project, name: str, others: Iterable[Path]) -> dict:
    """Join records written on other machines (CI builds each platform on its own
    runner) into ``build/images/NAME.json``; all must be of the current lock."""
    from builder.lock import read_lock

    expected = read_lock(project, name).lock_hash()
    here = record_path(project, name)
    platforms: dict[str, dict] = {}
    for path in [here, *others] if here.is_file() else list(others):
        shown = project.relative(path)
        try:
            data = json.loads(Path(path).read_text())
            entries = dict(data["platforms"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise BuildError("not an image record (build/images/NAME.json)", file=shown) from None
        if data.get("lock_hash") != expected:
            raise BuildError(
                f"built from another lock than lockfiles/{name} (run: scistacks build {name})",
                file=shown,
                field="lock_hash",
            )
        for plat, entry in entries.items():
            known = platforms.get(plat)
            if known and known.get("image_id") != entry.get("image_id"):
                raise BuildError(
                    f"two different {plat} images: {known.get('image_id')} and "
                    f"{entry.get('image_id')}",
                    file=shown,
                )
            platforms[plat] = entry
    return _save_record(here, name, expected, platforms)
