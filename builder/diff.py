"""What changed between two states of the lockfiles, as a pull-request body.

Reads ``lockfiles/NAME/conda-lock.yml`` of the working tree and of the commit where it
left a git ref (read from git's objects; unchanged files are not even parsed), or two
lockfile paths, and reports per distribution and platform the packages
added, removed, upgraded, downgraded or rebuilt. Version changes are classed major, minor or
patch by conda's version order (rattler). The distribution's own and inherited dependencies
come first, the rest after, folded away when long.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import rattler

from builder import git as git_cli
from builder.errors import ScistacksError
from builder.lock import condalock
from builder.lock.model import LockedDistribution
from builder.project import Project
from builder.spec import Catalog

KINDS = ("upgraded", "downgraded", "added", "removed", "build")
LEVELS = ("major", "minor", "patch")
FOLD_AFTER = 10  # transitive changes shown before they go into a <details> block


@dataclass(frozen=True)
class Change:
    name: str
    kind: str  # one of KINDS; "build" = same version, another build
    old_version: str | None = None
    old_build: str | None = None
    new_version: str | None = None
    new_build: str | None = None
    level: str | None = None  # major/minor/patch, for upgraded and downgraded
    direct: bool = False  # asked for by the distribution's spec (own or inherited)
    pypi: bool = False  # a PyPI package (``manager: pip``), listed under "PyPI"


@dataclass
class PlatformDiff:
    platform: str
    status: str  # changed | unchanged | added | removed
    old_count: int
    new_count: int
    changes: list[Change] = field(default_factory=list)


@dataclass
class DistributionDiff:
    name: str
    status: str  # changed | unchanged | added | removed
    platforms: list[PlatformDiff] = field(default_factory=list)
    parent: str | None = None

    @property
    def changes(self) -> list[Change]:
        return [c for p in self.platforms for c in p.changes]


# ---------------------------------------------------------------- comparing


def level(old: str, new: str, pypi: bool = False) -> str:
    """major/minor/patch: the first version segment that differs (the epoch counts as
    major); conda's version order, or PEP 440's for a PyPI package."""
    a, b = _version(old, pypi), _version(new, pypi)
    if a.epoch != b.epoch:
        return "major"
    sa, sb = (a.release, b.release) if pypi else (a.segments(), b.segments())
    if pypi:
        sa, sb = [[x] for x in sa], [[x] for x in sb]
    for i in range(max(len(sa), len(sb))):
        if (sa[i] if i < len(sa) else [0]) != (sb[i] if i < len(sb) else [0]):
            return LEVELS[min(i, 2)]
    return "patch"  # only the local part (+...) differs


def _version(text: str, pypi: bool):
    if pypi:
        from packaging.version import Version

        return Version(text)
    return rattler.Version(text)


def _change(name, old, new, direct: bool, pypi: bool = False) -> Change | None:
    """A conda package's change, or a PyPI package's (no build: another wheel of the same
    version counts as a rebuild, shown by its file name)."""

    def build(p):
        return p.file_name if pypi else p.build

    flags = {"direct": direct, "pypi": pypi}
    if old is None:
        return Change(name, "added", new_version=new.version, new_build=build(new), **flags)
    if new is None:
        return Change(name, "removed", old.version, build(old), **flags)
    if (old.version, build(old), old.sha256 or getattr(old, "md5", "")) == (
        new.version,
        build(new),
        new.sha256 or getattr(new, "md5", ""),
    ):
        return None
    fields = {"old_version": old.version, "old_build": build(old), "new_version": new.version}
    fields |= {"new_build": build(new), **flags}
    a, b = _version(old.version, pypi), _version(new.version, pypi)
    if a == b:
        return Change(name, "build", **fields)
    return Change(
        name,
        "upgraded" if b > a else "downgraded",
        level=level(old.version, new.version, pypi),
        **fields,
    )


def compare(
    old: LockedDistribution | None,
    new: LockedDistribution | None,
    direct: set[str] = frozenset(),
    name: str = "",
) -> DistributionDiff:
    """The difference between two locks of one distribution (either may be missing)."""
    name = name or (new or old).name
    parent = (new or old).metadata.get("parent") or None
    if old is None or new is None:
        status = "added" if old is None else "removed"
        lock = new or old
        return DistributionDiff(
            name,
            status,
            [
                PlatformDiff(
                    p,
                    status,
                    0 if old is None else len(lock.packages[p]),
                    len(lock.packages[p]) if old is None else 0,
                )
                for p in lock.platforms
            ],
            parent,
        )
    out = DistributionDiff(name, "unchanged", parent=parent)
    for platform in [*old.platforms, *(p for p in new.platforms if p not in old.platforms)]:
        before = old.by_name(platform) if platform in old.packages else None
        after = new.by_name(platform) if platform in new.packages else None
        if before is None or after is None:
            status = "added" if before is None else "removed"
            out.platforms.append(
                PlatformDiff(platform, status, len(before or ()), len(after or ()))
            )
            continue
        changes = [
            c
            for n in sorted(before.keys() | after.keys())
            if (c := _change(n, before.get(n), after.get(n), n in direct)) is not None
        ]
        wheels_before = {w.name: w for w in old.pypi.get(platform, ())}
        wheels_after = {w.name: w for w in new.pypi.get(platform, ())}
        changes += [
            c
            for n in sorted(wheels_before.keys() | wheels_after.keys())
            if (c := _change(n, wheels_before.get(n), wheels_after.get(n), n in direct, True))
        ]
        changes.sort(key=lambda c: (c.pypi, not c.direct, KINDS.index(c.kind), c.name))
        status = "changed" if changes else "unchanged"
        out.platforms.append(PlatformDiff(platform, status, len(before), len(after), changes))
    if any(p.status != "unchanged" for p in out.platforms):
        out.status = "changed"
    return out


# ---------------------------------------------------------------- reading two states


def git(project: Project, *args: str, check: bool = True) -> str:
    """Run git in the project folder for ``--base``; a failure is one ScistacksError line."""
    return git_cli.run(project.root, *args, check=check, field="--base")


def merge_base(project: Project, ref: str) -> str:
    """The commit the working tree is compared with: where it left ``ref`` (as in ``git diff
    REF...``), so that commits that landed on ``ref`` since do not show as reverted here."""
    if git(project, "rev-parse", "--is-inside-work-tree", check=False).strip() != "true":
        raise ScistacksError(f"not a git repository: {project.root}", field="--base")
    if not git(
        project, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False
    ).strip():
        hint = f" (fetch it first: git fetch origin {ref[7:]})" if ref.startswith("origin/") else ""
        raise ScistacksError(f"unknown git ref {ref!r}{hint}", field="--base")
    base = git(project, "merge-base", ref, "HEAD", check=False).strip()
    return base or git(project, "rev-parse", f"{ref}^{{commit}}").strip()


def _lockfile_names(project: Project, commit: str) -> dict[str, str]:
    """name -> blob id of ``lockfiles/NAME/conda-lock.yml`` at ``commit``."""
    out = {}
    for line in git(project, "ls-tree", "-r", commit, "--", "lockfiles/").splitlines():
        meta, _, path = line.partition("\t")
        parts = Path(path).parts
        if len(parts) == 3 and parts[2] == "conda-lock.yml":
            out[parts[1]] = meta.split()[2]
    return out


def direct_names(catalog: Catalog | None, name: str) -> set[str]:
    """What a distribution's spec asks for, its own and inherited (none if it has no spec)."""
    if catalog is None or name not in catalog.distributions:
        return set()
    dist = catalog.get(name)
    from builder.spec import pep508

    return set(dist.direct_names) | {pep508.name(r) for r in dist.pip_constraints}


def diff_tree(
    project: Project, ref: str = "HEAD", catalog: Catalog | None = None
) -> list[DistributionDiff]:
    """The working tree's lockfiles against those at (the merge base with) ``ref``."""
    base = merge_base(project, ref)
    then = _lockfile_names(project, base)
    now = {p.parent.name: p for p in sorted(project.root.glob("lockfiles/*/conda-lock.yml"))}
    # unchanged files are skipped by blob id, without parsing
    names = sorted(then.keys() | now.keys())
    current = {}
    if now:
        ids = git(project, "hash-object", "--", *(str(p) for p in now.values())).split()
        current = dict(zip(now, ids, strict=True))
    diffs = []
    for name in names:
        if name in then and current.get(name) == then[name]:
            diffs.append(DistributionDiff(name, "unchanged"))
            continue
        shown_old = f"{ref}:lockfiles/{name}/conda-lock.yml"
        old = None
        if name in then:
            text = git(project, "cat-file", "blob", then[name])
            old = condalock.parse_text(text, shown_old, name)
        new = None
        if name in now:
            new = condalock.read(now[name], project.relative(now[name]))
        diffs.append(compare(old, new, direct_names(catalog, name), name))
    # parents before children, as ``scistacks list`` shows them
    order = catalog.names() if catalog else []
    return sorted(
        diffs, key=lambda d: (order.index(d.name) if d.name in order else len(order), d.name)
    )


def diff_files(old: Path, new: Path, catalog: Catalog | None = None) -> DistributionDiff:
    """Two lockfile paths (any two locks: directs are the newer one's distribution's)."""
    before, after = condalock.read(old), condalock.read(new)
    return compare(before, after, direct_names(catalog, after.name))


# ---------------------------------------------------------------- output


def _versions(c: Change) -> tuple[str, str]:
    if c.kind == "build":
        return f"{c.old_version} ({c.old_build})", f"{c.new_version} ({c.new_build})"
    return c.old_version or "", c.new_version or ""


def _describe(c: Change) -> str:
    if c.level:
        return f"{c.level} {c.kind.removesuffix('d')}"  # "minor upgrade"
    return "rebuild" if c.kind == "build" else c.kind


def _table(changes: list[Change]) -> list[str]:
    rows = ["| Package | Old | New | Change |", "|---|---|---|---|"]
    for c in changes:
        old, new = _versions(c)
        name = f"**{c.name}**" if c.direct else c.name
        rows.append(f"| {name} | {old or '-'} | {new or '-'} | {_describe(c)} |")
    return rows


def _summary(changes: list[Change]) -> str:
    counts = {k: sum(c.kind == k for c in changes) for k in KINDS}
    words = {"build": "build-only"}
    parts = [f"{n} {words.get(k, k)}" for k, n in counts.items() if n]
    return ", ".join(parts)


def _key(c: Change) -> tuple:
    return (c.name, c.kind, c.old_version, c.old_build, c.new_version, c.new_build)


def to_markdown(
    diffs: list[DistributionDiff], title: str = "Lockfile changes", limit: int | None = None
) -> str:
    """A pull-request body. ``limit`` (characters; GitHub takes 65536) drops the folded
    dependency tables first, then cuts."""
    text = _markdown(diffs, title, tables=True)
    if limit is None or len(text) <= limit:
        return text
    text = _markdown(diffs, title, tables=False)
    if len(text) <= limit:
        return text
    note = "\n\n(cut here: run `scistacks diff --format json` for every change)\n"
    return text[: max(0, limit - len(note))].rsplit("\n", 1)[0] + note


def _markdown(diffs: list[DistributionDiff], title: str, tables: bool) -> str:
    changed = [d for d in diffs if d.status != "unchanged"]
    if not changed:
        return "No package changes.\n"
    by_name = {d.name: d for d in changed}
    out = [f"## {title}", ""]
    for d in changed:
        out += [f"### {d.name}", ""]
        if d.status in ("added", "removed"):
            counts = ", ".join(
                f"{p.platform} ({p.new_count or p.old_count} packages)" for p in d.platforms
            )
            out += [f"{'New lock' if d.status == 'added' else 'Lock removed'}: {counts}.", ""]
            continue
        parent = by_name.get(d.parent or "")
        # platforms with the same rows (noarch-only bumps, usually) are shown once
        groups: dict[tuple, list[tuple[PlatformDiff, list[Change], int]]] = {}
        for p in d.platforms:
            if p.status == "unchanged":
                continue
            # a child repeats its parent's changes (same records): list only its own
            shared = set()
            if parent is not None:
                shared = {
                    _key(c)
                    for pp in parent.platforms
                    if pp.platform == p.platform
                    for c in pp.changes
                }
            own = [c for c in p.changes if _key(c) not in shared]
            rows = tuple((c.name, c.kind, *_versions(c), c.level, c.direct) for c in own)
            groups.setdefault((p.status, rows), []).append((p, own, len(p.changes) - len(own)))
        for (status, _), entries in groups.items():
            names = ", ".join(p.platform for p, _, _ in entries)
            first, own, n_shared = entries[0]
            if status in ("added", "removed"):
                verb = "new platform" if status == "added" else "platform dropped"
                out += [f"**{names}**: {verb} ({first.new_count or first.old_count} packages)", ""]
                continue
            counts = (
                f"{first.old_count} → {first.new_count} packages"
                if first.old_count != first.new_count
                else f"{first.new_count} packages"
            )
            also = (
                f"; also the {_plural(n_shared, 'change')} of {d.parent} above" if n_shared else ""
            )
            head = _summary(own) or "no changes of its own"
            out += [f"**{names}**: {head} ({counts}){also}", ""]
            # the spec's own packages first (bold), then what they pull in; long lists fold
            pypi = [c for c in own if c.pypi]
            own = [c for c in own if not c.pypi]
            direct = [c for c in own if c.direct]
            transitive = [c for c in own if not c.direct]
            fold = len(transitive) > FOLD_AFTER or not tables
            shown = direct if fold else direct + transitive
            if shown:
                out += [*_table(shown), ""]
            if fold and transitive:
                summary = _plural(len(transitive), "dependency change")
                if tables:
                    out += [f"<details><summary>{summary}</summary>", ""]
                    out += [*_table(transitive), "", "</details>", ""]
                else:
                    out += [f"{summary} (not listed here: `scistacks diff --format json`)", ""]
            if pypi:
                out += ["#### PyPI", "", *_table(pypi), ""]
    unchanged = [d.name for d in diffs if d.status == "unchanged"]
    if unchanged:
        out += [f"Unchanged: {', '.join(unchanged)}.", ""]
    out.append(_total_line(diffs))
    return "\n".join(out) + "\n"


def totals(diffs: list[DistributionDiff]) -> dict:
    changes = [c for d in diffs for c in d.changes]
    out = {k: sum(c.kind == k for c in changes) for k in KINDS}
    out["changes"] = len(changes)
    out["packages"] = len({c.name for c in changes})
    out["distributions"] = sum(d.status != "unchanged" for d in diffs)
    for lv in LEVELS:
        out[lv] = sum(c.level == lv for c in changes)
    return out


def _total_line(diffs: list[DistributionDiff]) -> str:
    t = totals(diffs)
    # a family shares its records, so one bump shows in several locks: count both
    line = (
        f"**Total:** {_plural(t['changes'], 'change')} to {_plural(t['packages'], 'package')} "
        f"in {_plural(t['distributions'], 'distribution')}"
    )
    summary = _summary([c for d in diffs for c in d.changes])
    levels = ", ".join(f"{t[lv]} {lv}" for lv in LEVELS if t[lv])
    if summary:
        line += f": {summary}"
    if levels:
        line += f" ({levels})"
    return line + "."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def to_json(diffs: list[DistributionDiff]) -> str:
    data = {
        "distributions": [
            {
                "name": d.name,
                "parent": d.parent,
                "status": d.status,
                "platforms": [asdict(p) for p in d.platforms],
            }
            for d in diffs
        ],
        "totals": totals(diffs),
    }
    return json.dumps(data, indent=2) + "\n"
