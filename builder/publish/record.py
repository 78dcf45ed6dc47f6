"""What publish reads and writes besides the registry: the smoke results it requires
(``build/smoke/NAME/results.json``) and the publish record ``build/publish/NAME.json``,
both typed in ``builder.records``."""

from __future__ import annotations

from pydantic import Field

from builder.errors import PublishError, RecordError
from builder.project import Project, oci_platform
from builder.records import ImageRecord, PlatformImage, PublishRecord, SmokeResults


class Published(PublishRecord):
    """A publish's answer: its record, and whether it found everything there already."""

    unchanged: bool = Field(default=False, exclude=True)  # not part of the record


def require_smoke_passed(
    project: Project, name: str, locked, images: dict[str, PlatformImage]
) -> None:
    where = project.relative(project.smoke_results(name))
    results = SmokeResults.load(project, name)
    if results.lock_hash != locked.lock_hash():
        raise PublishError(f"smoke tested another lock (run: scistacks smoke {name})", file=where)
    for plat, entry in images.items():
        tested = results.platforms.get(plat)
        if tested is None:
            raise PublishError(f"{oci_platform(plat)} was not smoke-tested", file=where)
        if tested.image_id != entry.image_id:
            raise PublishError(
                f"{oci_platform(plat)}: smoke tested {str(tested.image_id)[:19]}, "
                f"not the built {entry.image_id[:19]} (run: scistacks smoke {name})",
                file=where,
            )
        if not tested.passed:
            failed = ", ".join(tested.failed) or tested.problem or "failed"
            raise PublishError(f"{oci_platform(plat)} failed smoke tests: {failed}", file=where)


def smoke_is_current(project: Project, name: str) -> bool:
    """True when results.json passed for exactly the recorded images (release skips smoke)."""
    from builder import lock as locking

    try:
        locked = locking.read_lock(project, name)
        images = ImageRecord.load(project, name).platforms
        require_smoke_passed(project, name, locked, images)
    except (PublishError, RecordError):
        return False
    return bool(images)


def previous_record(project: Project, name: str) -> Published | None:
    """The last publish record, when it is one. A missing or damaged one is no error: the
    registry holds the truth, and publish writes the record again from it."""
    try:
        record = PublishRecord.load(project, name)
    except RecordError:
        return None
    return Published(**dict(record))
