"""Stage 8: hub, ``hub bump``. Reads hub config files (kept in the hub admins' own
repositories), what the registry publishes and the project's ``yanked.yml``; rewrites
every reference to our images to the newest published release that is not yanked, in the
tag style the reference already uses (content ``lock-…`` or CalVer), and returns a diff.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import HubError
from builder.fsutil import write_atomic
from builder.hub.config import HubConfig, ImageRef, malformed
from builder.hub.releases import Registries, Releases, load_configs, reported_at
from builder.project import Project
from builder.publish.tags import style_of

if TYPE_CHECKING:
    from builder.spec import Catalog

STYLES = ("content", "calver")


@dataclass
class BumpedFile:
    config: HubConfig
    changes: dict[ImageRef, str]  # reference -> its new tag
    text: str  # the file's new text (the old one when nothing changed)
    written: bool = False

    @property
    def diff(self) -> str:
        shown = self.config.shown
        return "".join(
            difflib.unified_diff(
                self.config.text.splitlines(keepends=True),
                self.text.splitlines(keepends=True),
                shown,
                shown,
            )
        )


def bump(
    project: Project,
    catalog: Catalog | None,
    paths: Iterable[str | Path],
    registries: Iterable[str] | None = None,
    *,
    style: str | None = None,
    write: bool = True,
) -> list[BumpedFile]:
    """Rewrite references to the newest non-yanked release; digests are left alone.

    Every file is read and every new tag decided before anything is written.
    """
    if style is not None and style not in STYLES:
        raise HubError(f"unknown style {style!r} (expected {' or '.join(STYLES)})", field="--style")
    configs = load_configs(project, catalog, paths, registries)
    for ref in (r for c in configs for r in c.refs):
        problem = malformed(ref)
        if problem:  # knowable without the registry: refused before asking it
            raise HubError(problem, file=ref.file, field=f"line {ref.line}")
    published = Registries(project, (r for c in configs for r in c.refs))
    results = []
    for config in configs:
        changes: dict[ImageRef, str] = {}
        for ref in config.refs:
            if ref.digest:
                continue  # pinned by digest: the admin chose that exact image
            with reported_at(ref):
                new = _bumped_tag(published.of(ref), ref, style)
            if new is not None:
                changes[ref] = new
        text = config.rewritten(changes) if changes else config.text
        results.append(BumpedFile(config, changes, text))
    if write:
        for result in results:
            if result.changes:
                result.written = write_atomic(result.config.path, result.text)
    return results


def _bumped_tag(repo: Releases, ref: ImageRef, style: str | None) -> str | None:
    """The tag ``ref`` should carry, or None when it is current."""
    newest = repo.newest()
    if newest is None:
        raise HubError(
            f"{repo.reference} has no published release that is not yanked (no CalVer tag)",
            file=ref.file,
            field=f"line {ref.line}",
        )
    # latest, a git sha, a version tag or no tag at all become the content tag
    wanted = style or style_of(ref.tag) or "content"
    current = (
        style_of(ref.tag) == wanted and ref.tag in repo.tags and repo.digest(ref.tag) == newest[1]
    )
    return None if current else repo.tag_for(newest, wanted)
