"""The publish record ``build/publish/NAME.json`` (what the last publish pushed) and the
smoke results publish requires (``build/smoke/NAME/results.json``)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder.errors import PublishError
from builder.fsutil import write_atomic
from builder.project import Project, oci_platform


@dataclass
class Published:
    distribution: str
    repository: str  # REGISTRY/NAMESPACE/NAME
    digest: str  # of the manifest list
    lock_hash: str
    immutable: list[str] = field(default_factory=list)
    mutable: list[str] = field(default_factory=list)
    platforms: dict[str, str] = field(default_factory=dict)  # linux/amd64 -> digest
    artifacts: dict[str, str] = field(default_factory=dict)  # artifactType -> digest
    signed: dict = field(default_factory=dict)  # by, digests, attestations (--sign)
    unchanged: bool = False


def record_path(project: Project, name: str) -> Path:
    return project.build_dir / "publish" / f"{name}.json"


def require_smoke_passed(project: Project, name: str, locked, images: dict) -> None:
    path = project.results_dir(name) / "results.json"
    where = project.relative(path)
    if not path.is_file():
        raise PublishError(f"not smoke-tested (run: scistacks smoke {name})", file=where)
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PublishError(f"not valid JSON: {exc}", file=where) from None
    if results.get("lock_hash") != locked.lock_hash():
        raise PublishError(f"smoke tested another lock (run: scistacks smoke {name})", file=where)
    for plat, entry in images.items():
        tested = results.get("platforms", {}).get(plat)
        if not tested:
            raise PublishError(f"{oci_platform(plat)} was not smoke-tested", file=where)
        if tested.get("image_id") != entry["image_id"]:
            raise PublishError(
                f"{oci_platform(plat)}: smoke tested {str(tested.get('image_id'))[:19]}, "
                f"not the built {entry['image_id'][:19]} (run: scistacks smoke {name})",
                file=where,
            )
        if not tested.get("passed"):
            failed = ", ".join(tested.get("failed") or []) or tested.get("problem") or "failed"
            raise PublishError(f"{oci_platform(plat)} failed smoke tests: {failed}", file=where)


def smoke_is_current(project: Project, name: str) -> bool:
    """True when results.json passed for exactly the recorded images (release skips smoke)."""
    from builder import lock as locking
    from builder.image import read_record

    try:
        locked = locking.read_lock(project, name)
        images = read_record(project, name).get("platforms", {})
        require_smoke_passed(project, name, locked, images)
    except PublishError:
        return False
    return bool(images)


def previous_record(project: Project, name: str) -> Published | None:
    """The last publish record, when it is one (else: not trusted, publish again)."""
    try:
        data = json.loads(record_path(project, name).read_text())
        known = {f.name for f in dataclasses.fields(Published)} - {"unchanged"}
        if not isinstance(data, dict) or set(data) != known:
            return None
        return Published(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_record(project: Project, published: Published) -> None:
    data = asdict(published)
    data.pop("unchanged")
    write_atomic(record_path(project, published.distribution), json.dumps(data, indent=2) + "\n")
