"""The image record ``build/images/NAME.json`` (``builder.records.ImageRecord``): which
local image each platform has, of which lock, from which engine; read by ``smoke`` and
``publish``. CI builds each platform on its own runner and joins the records with
``merge_records``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import BuildError, RecordError
from builder.lock.model import LockedDistribution
from builder.project import Project
from builder.records import ImageRecord, PlatformImage

if TYPE_CHECKING:
    from builder.image.stage import BuiltImage


def write_record(project: Project, locked: LockedDistribution, built: list[BuiltImage]) -> None:
    platforms: dict[str, PlatformImage] = {}
    try:
        previous = ImageRecord.load(project, locked.name).platforms
    except RecordError:
        previous = {}  # none yet, or damaged: this build writes it anew
    # keep other platforms' images only while they still match the lock
    for plat, entry in previous.items():
        if plat in locked.packages and entry.lock_hash == locked.lock_hash(plat):
            platforms[plat] = entry
    for image in built:
        platforms[image.platform] = PlatformImage(
            oci_platform=image.oci_platform,
            ref=image.ref,
            image_id=image.image_id,
            lock_hash=image.lock_hash,
            engine=image.engine,
        )
    _save(project, locked.name, locked.lock_hash(), platforms)


def _save(
    project: Project, name: str, lock_hash: str, platforms: dict[str, PlatformImage]
) -> ImageRecord:
    record = ImageRecord(
        distribution=name, lock_hash=lock_hash, platforms=dict(sorted(platforms.items()))
    )
    record.save(project)
    return record


def merge_records(project: Project, name: str, others: Iterable[Path]) -> ImageRecord:
    """Join records written on other machines (CI builds each platform on its own
    runner) into ``build/images/NAME.json``; all must be of the current lock."""
    from builder.lock import read_lock

    expected = read_lock(project, name).lock_hash()
    here = project.image_record(name)
    platforms: dict[str, PlatformImage] = {}
    for path in [here, *others] if here.is_file() else list(others):
        record = ImageRecord.load(project, name, path=Path(path))
        shown = project.relative(path)
        if record.lock_hash != expected:
            raise BuildError(
                f"built from another lock than lockfiles/{name} (run: scistacks build {name})",
                file=shown,
                field="lock_hash",
            )
        for plat, entry in record.platforms.items():
            known = platforms.get(plat)
            if known and known.image_id != entry.image_id:
                raise BuildError(
                    f"two different {plat} images: {known.image_id} and {entry.image_id}",
                    file=shown,
                )
            platforms[plat] = entry
    return _save(project, name, expected, platforms)
