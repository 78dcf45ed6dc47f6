"""The CI job matrix: which (distribution, platform) images a change affects.

A distribution is affected when a file of its own changed since the base ref (its spec,
notebooks and scripts under ``distributions/NAME/``, its lock under ``lockfiles/NAME/``,
its build context under ``images/NAME/``, or any file its spec points at), or when one of
its ancestors is affected. A change to the builder itself affects everything. Each
affected distribution gives one job per image platform, on a native GitHub runner.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from builder.diff import git, merge_base
from builder.project import OCI_PLATFORMS, Project
from builder.spec import Catalog

# conda platform -> GitHub-hosted runner of that architecture (no emulation in CI)
RUNNERS = {"linux-64": "ubuntu-24.04", "linux-aarch64": "ubuntu-24.04-arm"}
# changes here can change any image
EVERYTHING = ("builder/", "pyproject.toml")
# top-level folders whose second path part is a distribution's name
PER_DISTRIBUTION = ("distributions", "lockfiles", "images")
KEYS = ("distribution", "platform", "oci_platform", "runner")


def changed_files(project: Project, ref: str) -> list[str]:
    """Files changed between where HEAD left ``ref`` and the working tree (committed or not,
    untracked included), relative to the project folder."""
    base = merge_base(project, ref)
    tracked = git(project, "diff", "--name-only", "--relative", "--no-renames", base)
    untracked = git(project, "ls-files", "--others", "--exclude-standard")
    return sorted(set(tracked.splitlines()) | set(untracked.splitlines()) - {""})


def affected(catalog: Catalog, files: list[str] | None) -> dict[str, str]:
    """Affected distribution -> why, in dependency order. ``files=None`` means everything."""
    names = catalog.names()
    if files is None:
        return dict.fromkeys(names, "no --base: every job")
    for f in files:
        if any(f == e or (e.endswith("/") and f.startswith(e)) for e in EVERYTHING):
            return dict.fromkeys(names, f"{f} changed")
    why: dict[str, str] = {}
    for f in files:
        parts = PurePosixPath(f).parts
        if len(parts) >= 2 and parts[0] in PER_DISTRIBUTION and parts[1] in catalog.distributions:
            why.setdefault(parts[1], f"{f} changed")
    for name in names:  # files a spec points at from elsewhere (shared notebooks, scripts)
        dist = catalog.get(name)
        used = {nb.path for nb in dist.notebooks} | set(dist.post_build) | set(dist.start)
        for f in files:
            if f in used:
                why.setdefault(name, f"{f} changed")
    for name in names:  # parents come first, so a chain is followed in one pass
        parent = catalog.get(name).parent
        if name not in why and parent in why:
            why[name] = f"parent {parent} affected"
    return {n: why[n] for n in names if n in why}


def jobs(catalog: Catalog, names) -> list[dict[str, str]]:
    return [
        {
            "distribution": name,
            "platform": platform,
            "oci_platform": OCI_PLATFORMS[platform],
            "runner": RUNNERS[platform],
        }
        for name in names
        for platform in catalog.get(name).platforms
        if platform in RUNNERS
    ]


def matrix(project: Project, catalog: Catalog, base: str | None = None) -> dict:
    """GitHub Actions' ``strategy.matrix``: ``{"include": [{distribution, platform, ...}]}``."""
    files = changed_files(project, base) if base else None
    return {"include": jobs(catalog, affected(catalog, files))}
