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
    integrity.check_pypi(locked, shown)
    if catalog is None:
        catalog = Catalog.load(project, collect=[])  # broken specs: their checks are skipped
    dist = catalog.distributions.get(name)
    try:
        # the index the lock was made with: lock --check is where a changed index shows
        index = locked.metadata.get("pypi_index")
        current = dist is not None and locked.inputs_hash == inputs_hash(catalog, name, index)
    except (SpecError, KeyError):
        current = False
    if current:
        direct = {n: dist.origins.get(n, dist.spec_files[-1]) for n in dist.direct_names}
        integrity.check_direct(locked, shown, direct)
        integrity.check_direct(locked, shown, _pip_direct(dist), pypi=True)
    lock_dir = project.lock_dir(name)
    integrity.check_explicit(locked, lock_dir, project.relative(lock_dir))


def _pip_direct(dist) -> dict[str, str]:
    """The spec's pip requirements that hold on every platform (no marker): name -> file."""
    from builder.spec import pep508

    out = {}
    for req in dist.pip_constraints:
        if pep508.parse(req).marker is None:
            out.setdefault(pep508.name(req), dist.pip_origins.get(req, (dist.spec_files[-1],))[0])
    return out


def inputs_hash(catalog: Catalog, name: str, pypi_index: str | None = None) -> str:
    """What a relock depends on: this member's specs and its whole solve group's, and
    the PyPI index when the group has pip requirements (``pypi_index``, default: the
    project's ``[tool.scistacks] pypi-index``)."""
    group = catalog.solve_group(name)
    members = catalog.group_members(group)
    blob = {
        "distribution": catalog.get(name).lock_inputs(),
        "group": {m: catalog.get(m).lock_inputs() for m in members},
    }
    if any(catalog.get(m).pip_constraints for m in members):
        blob["pypi_index"] = _index(catalog, pypi_index)
    anchor = catalog.get(members[0])
    if anchor.parent and catalog.solve_group(anchor.parent) != group:
        blob["preferred_parent"] = inputs_hash(catalog, anchor.parent, pypi_index)
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _index(catalog: Catalog, pypi_index: str | None) -> str:
    """The index a lock reads: ``pypi_index``, else the project's."""
    if pypi_index is not None:
        return pypi_index
    from builder.lock.pypi_index import PypiIndexMap

    return PypiIndexMap.from_sources(catalog.project.root).index


@dataclass
class Staleness:
    name: str
    reason: str
    kind: str = "stale"  # or "damaged": the lock fails its integrity checks


def check(
    project: Project, catalog: Catalog, names: list[str], pypi_index: str | None = None
) -> list[Staleness]:
    """Which locks no longer match their specs (without solving). ``pypi_index``: the
    index a relock would read (default: the project's)."""
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
        elif (was := locked.metadata.get("pypi_index")) and was != _index(catalog, pypi_index):
            stale.append(
                Staleness(
                    name,
                    f"{project.relative(path)}: locked from PyPI index {was}, now "
                    f"{_index(catalog, pypi_index)} (run: scistacks lock {name})",
                )
            )
        elif locked.inputs_hash != inputs_hash(catalog, name, pypi_index):
            stale.append(
                Staleness(
                    name,
                    f"{project.relative(path)}: out of date with {', '.join(dist.spec_files)} or its solve group (run: scistacks lock {name})",
                )
            )
    return stale
