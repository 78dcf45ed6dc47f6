"""Bumps: move the named packages of a lock and keep everything else.

``scistacks bump NAME PKG[=VERSION|SPEC]...`` relocks NAME's solve group with every locked
record preferred and only the named packages free, so what moves is the package and what
its new version strictly requires. NAME's descendants are relocked in the same run, so each
child still holds its parent's records at identical builds. ``--all`` frees a whole
distribution (its own packages, not its parent's) or, without NAME, everything.

Nothing is written unless every group solved; the result is the lock diff.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import rattler
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from builder import diff
from builder.errors import LockError
from builder.lock import ChannelMap, LockResult, lock, read_lock, verify
from builder.lock.model import LockedDistribution, LockedPackage, PypiPackage
from builder.lock.preferred import lock_environment
from builder.lock.pypi_index import PypiIndexMap
from builder.project import Project
from builder.spec import Catalog, matchspec


@dataclass
class BumpResult:
    results: list[LockResult]
    diffs: list[diff.DistributionDiff]
    unmoved: list[str]  # named packages that stayed (nothing newer satisfies the specs)


def bump(
    project: Project,
    catalog: Catalog,
    channel_map: ChannelMap,
    name: str | None = None,
    packages: list[str] | tuple[str, ...] = (),
    *,
    everything: bool = False,
    exclude_newer: dt.datetime | None = None,
    progress=None,
    dry_run: bool = False,
    pypi_index: PypiIndexMap | None = None,
    allow_sdist: bool = False,
) -> BumpResult:
    """Bump ``packages`` of ``name`` (or all of it with ``everything``; ``name=None`` with
    ``everything`` refreshes every distribution)."""
    if name is None and not everything:
        raise LockError("name a distribution to bump, or use --all for every one")
    if name is not None and not packages and not everything:
        raise LockError(
            f"name the packages of {name} to bump (PKG or PKG=VERSION), or use --all", field=name
        )
    if packages and everything:
        raise LockError("give packages to bump or --all, not both", field="--all")

    if name is None:
        names = catalog.names()
        update = {n: ["*"] for n in names}
    else:
        catalog.get(name)
        if not project.lockfile(name).is_file():
            raise LockError(
                f"no lockfile for {name!r} to bump (run: scistacks lock {name})",
                file=project.relative(project.lockfile(name)),
            )
        names = [name, *catalog.descendants(name)]
    # the locks as they are, for the diff (lock() relocks whole solve groups: read them all)
    before = {n: old for n in catalog.names() if (old := _read(project, catalog, n)) is not None}
    if name is not None:
        update = {name: ["*"] if everything else _checked(catalog, name, packages, before)}

    try:
        results = lock(
            project,
            catalog,
            names,
            channel_map,
            exclude_newer=exclude_newer,
            update=update,
            progress=progress,
            dry_run=dry_run,
            pypi_index=pypi_index,
            allow_sdist=allow_sdist,
        )
    except LockError as exc:
        if name is None or everything:
            raise
        raise LockError(f"cannot bump {', '.join(packages)} in {name}{_blocker(exc)}") from None

    diffs = [
        diff.compare(before.get(r.name), r.locked, diff.direct_names(catalog, r.name), r.name)
        for r in results
    ]
    moved = {c.name for d in diffs for c in d.changes}
    unmoved = [
        name
        for name in map(matchspec.package_name, packages)
        if name not in moved and canonicalize_name(name) not in moved
    ]
    return BumpResult(results, diffs, unmoved)


def _blocker(exc: LockError) -> str:
    """The solver's reason, without the member it was tried on: the spec files are not at
    fault, the bump is."""
    m = re.match(r"^.*?cannot be solved on (\S+): (.*)$", exc.message) or re.match(
        r"^solve group .*? on (\S+) .*?is unsolvable: (.*)$", exc.message
    )
    if not m:
        return f": {exc.message}"
    reason = m.group(2).removeprefix("Cannot solve the request because of: ")
    return f" on {m.group(1)}: {reason}"


def _read(project: Project, catalog: Catalog, name: str) -> LockedDistribution | None:
    """A lock as the diff needs it (packages, versions, builds, hashes), read with rattler:
    its reader is several times faster than YAML on files of this size."""
    path = project.lockfile(name)
    if not path.is_file():
        return None
    try:
        env = lock_environment(path)  # parsed once: lock() prefers these records
    except Exception as exc:
        read_lock(project, name, catalog)  # names the problem in the file
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise LockError(f"unreadable lockfile: {first}", file=project.relative(path)) from None
    packages = {
        p.name: sorted(
            (_package(r, p.name) for r in env.conda_repodata_records_for_platform(p) or []),
            key=lambda x: x.name,
        )
        for p in env.platforms()
    }
    pypi = {
        p.name: [_wheel(w, p.name) for w in env.pypi_packages_for_platform(p) or []]
        for p in env.platforms()
    }
    dist = catalog.get(name)
    order = [p for p in dist.platforms if p in packages] + [
        p for p in packages if p not in dist.platforms
    ]
    locked = LockedDistribution(
        name=name,
        platforms=tuple(order),
        channels=dist.channels,
        packages=packages,
        inputs_hash="",
        metadata={"parent": dist.parent or ""},
        pypi={p: sorted(ws) for p, ws in pypi.items() if ws},
    )
    verify(project, name, locked, catalog)  # a damaged lock is named before any solve
    return locked


def _package(record: rattler.RepoDataRecord, platform: str) -> LockedPackage:
    def hexdigest(value) -> str:
        return value.hex() if isinstance(value, bytes) else (value or "")

    return LockedPackage(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        platform=platform,
        url=str(record.url),
        md5=hexdigest(record.md5),
        sha256=hexdigest(record.sha256),
        subdir=record.subdir,
        depends=tuple(record.depends),
    )


def _wheel(package, platform: str) -> PypiPackage:
    """A PyPI entry as rattler reads it (``requires_dist`` back to ``name specifier``)."""
    depends = []
    for line in package.requires_dist or []:
        req = Requirement(line)
        depends.append(f"{canonicalize_name(req.name)} {req.specifier}".strip())
    sha256 = package.hashes.sha256 if package.hashes else None
    return PypiPackage(
        name=package.name,
        version=str(package.version),
        platform=platform,
        url=str(package.location),
        sha256=sha256.hex() if isinstance(sha256, bytes) else (sha256 or ""),
        depends=tuple(depends),
    )


def _checked(catalog: Catalog, name: str, packages, before: dict) -> list[str]:
    """Bump specs as given. Each must name a package locked in NAME or a descendant, and
    must not contradict a spec of the distributions it relocks (that is the blocker)."""
    relocked = [name, *catalog.descendants(name)]
    locked = {
        p.name
        for n in relocked
        if n in before
        for pkgs in before[n].packages.values()
        for p in pkgs
    }
    wheels = {w.name for n in relocked if n in before for ws in before[n].pypi.values() for w in ws}
    specs = []
    for spec in packages:
        try:
            package = matchspec.package_name(spec)
        except ValueError as exc:
            raise LockError(str(exc), field=spec) from None
        if package not in locked and canonicalize_name(package) in wheels:
            _check_pip_bump(catalog, name, relocked, spec)
            specs.append(spec)
            continue
        if package not in locked:
            where = f"{name} or its children" if len(relocked) > 1 else name
            raise LockError(
                f"{package!r} is not in the lock of {where}; a bump only moves locked "
                f"packages (to add one, list it in {catalog.get(name).spec_files[-1]} "
                f"and run: scistacks lock {name})",
                field=spec,
            )
        for n in relocked:
            dist = catalog.get(n)
            for constraint in dist.constraints:
                if matchspec.package_name(constraint) == package and not matchspec.compatible(
                    constraint, spec
                ):
                    origin = dist.origins.get(package, dist.spec_files[-1])
                    raise LockError(
                        f"cannot bump {spec} in {name}: {origin} asks for {constraint!r} "
                        "(change the spec, then run: scistacks lock)"
                    )
        specs.append(spec)
    return specs


def _check_pip_bump(catalog: Catalog, name: str, relocked: list[str], spec: str) -> None:
    """A bump of a PyPI package must not contradict a pip requirement it relocks."""
    from builder.lock.pypi import bump_requirement
    from builder.spec import pep508

    req = bump_requirement(spec)
    if req is None:
        raise LockError(f"{spec!r} is not a PyPI requirement", field=spec)
    for n in relocked:
        dist = catalog.get(n)
        for asked in dist.pip_constraints:
            if pep508.name(asked) == req.name and not pep508.compatible(asked, str(req)):
                origin = dist.pip_origins.get(asked, (dist.spec_files[-1],))[0]
                raise LockError(
                    f"cannot bump {spec} in {name}: {origin} asks for {asked!r} "
                    "(change the spec, then run: scistacks lock)"
                )
