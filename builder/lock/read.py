"""Reading a lock back: ``read_lock`` (integrity checked), ``inputs_hash`` (what a relock
depends on) and ``check`` (which locks no longer match their specs, without solving)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from builder.errors import LockError
from builder.lock.model import LockedDistribution
from builder.project import Project
from builder.spec import Catalog


def read_lock(project: Project, name: str, catalog: Catalog | None = None) -> LockedDistribution:
    """``lockfiles/NAME/conda-lock.yml``, checked for integrity (``builder.lock.integrity``)."""
    path = project.lockfile(name)
    if not path.is_file():
        raise LockError(
            f"no lockfile for {name!r} (run: scistacks lock {name})", file=project.relative(path)
        )
    from builder.lock import condalock  # importing conda-lock costs ~0.4 s: only when used

    locked = condalock.read(path, project.relative(path))
    verify(project, name, locked, catalog)
    return locked


def verify(
    project: Project, name: str, locked: LockedDistribution, catalog: Catalog | None = None
) -> None:
    """Raise a LockError naming the file and package when the lock is damaged."""
    from builder.errors import SpecError
    from builder.lock import integrity

    shown = project.relative(project.lockfile(name))
    integrity.check_records(locked, shown)
    if catalog is None:
        catalog = Catalog.load(project, collect=[])  # broken specs: their checks are skipped
    dist = catalog.distributions.get(name)
    try:
        current = dist is not None and locked.inputs_hash == inputs_hash(catalog, name)
    except (SpecError, KeyError):
        current = False
    if current:
        direct = {n: dist.origins.get(n, dist.spec_files[-1]) for n in dist.direct_names}
        integrity.check_direct(locked, shown, direct)
    lock_dir = project.lock_dir(name)
    integrity.check_explicit(locked, lock_dir, project.relative(lock_dir))


def inputs_hash(catalog: Catalog, name: str) -> str:
    """What a relock depends on: this member's specs and its whole solve group's."""
    group = catalog.solve_group(name)
    members = catalog.group_members(group)
    blob = {
        "distribution": catalog.get(name).lock_inputs(),
        "group": {m: catalog.get(m).lock_inputs() for m in members},
    }
    anchor = catalog.get(members[0])
    if anchor.parent and catalog.solve_group(anchor.parent) != group:
        blob["preferred_parent"] = inputs_hash(catalog, anchor.parent)
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Staleness:
    name: str
    reason: str
    kind: str = "stale"  # or "damaged": the lock fails its integrity checks


def check(project: Project, catalog: Catalog, names: list[str]) -> list[Staleness]:
    """Which locks no longer match their specs (without solving)."""
    stale: list[Staleness] = []
    for name in names:
        path = project.lockfile(name)
        if not path.is_file():
            stale.append(
                Staleness(name, f"{project.relative(path)}: missing (run: scistacks lock {name})")
            )
            continue
        try:
            locked = read_lock(project, name, catalog)
        except LockError as exc:
            stale.append(Staleness(name, str(exc), kind="damaged"))
            continue
        dist = catalog.get(name)
        if tuple(locked.platforms) != tuple(dist.platforms):
            stale.append(
                Staleness(
                    name,
                    f"{project.relative(path)}: platforms {list(locked.platforms)} != spec {list(dist.platforms)}",
                )
            )
        elif locked.inputs_hash != inputs_hash(catalog, name):
            stale.append(
                Staleness(
                    name,
                    f"{project.relative(path)}: out of date with {', '.join(dist.spec_files)} or its solve group (run: scistacks lock {name})",
                )
            )
    return stale
