"""The image record ``build/images/NAME.json``: which local image each platform has, of
which lock, from which engine; read by ``smoke`` and ``publish``. CI builds each platform
on its own runner and joins the records with ``merge_records``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import BuildError
from builder.fsutil import write_atomic
from builder.lock.model import LockedDistribution
from builder.project import Project

if TYPE_CHECKING:
    from builder.image.stage import BuiltImage


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


def write_record(project: Project, locked: LockedDistribution, built: list[BuiltImage]) -> None:
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
