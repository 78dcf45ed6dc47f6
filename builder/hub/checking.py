"""Stage 8: hub, ``hub check``. Reads hub config files, what the registry publishes and
the project's ``yanked.yml``; reports, with file and line, references to yanked images,
to mutable tags (``latest``, ``python-3.12``), to tags that do not exist, untagged ones,
and with ``verify`` unsigned ones (``builder.hub.signed``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from builder.hub import yanked as yanks
from builder.hub.config import ImageRef, malformed
from builder.hub.releases import (
    Registries,
    Releases,
    Yank,
    load_configs,
    reported_at,
)
from builder.project import Project
from builder.publish.tags import mutable_tag

if TYPE_CHECKING:
    from builder.spec import Catalog

PIN = "pin an immutable tag (scistacks hub bump does)"


def _yank_text(y: Yank, ref: ImageRef) -> str:
    text = f"yanked on {y.date} ({y.tag}): {y.reason}"
    if y.replaced_by:
        text += f"; replaced by {ref.with_tag(y.replaced_by)}"
    return text


@dataclass(frozen=True)
class Finding:
    ref: ImageRef
    message: str
    problem: bool = True  # False: for information only

    def __str__(self) -> str:
        return f"{self.ref.where}: {self.message}"


@dataclass
class CheckReport:
    refs: list[ImageRef]
    findings: list[Finding] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # checks no registry could answer

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.problem]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if not f.problem]

    @property
    def failed(self) -> bool:
        return bool(self.problems or self.unchecked)


def check(
    project: Project,
    catalog: Catalog | None,
    paths: Iterable[str | Path],
    registries: Iterable[str] | None = None,
    *,
    verify=None,
) -> CheckReport:
    """Yanked, mutable, missing and untagged references, in file and line order; with
    ``verify`` (a cosign.Identity), unsigned ones and ones signed by someone else too.

    What needs no registry (malformed references, mutable tags, yanks in yanked.yml) is
    found first; a registry that does not answer leaves its checks in ``unchecked``."""
    configs = load_configs(project, catalog, paths, registries)
    refs = [r for c in configs for r in c.refs]
    report = CheckReport(refs)
    known = yanks.load(project) if project is not None else yanks.YankedList()
    offline = {ref: _offline(ref, known) for ref in refs}
    wellformed = [ref for ref in refs if not malformed(ref)]
    published = Registries(project, wellformed, lenient=True)
    for ref in refs:
        found = list(offline[ref])
        if ref in wellformed and published.answers(ref):
            with reported_at(ref):
                online = _check_ref(published.of(ref), ref)
                if verify is not None:
                    from builder.hub import signed

                    online += signed.findings(published.of(ref), ref, verify)
            found += [f for f in online if f not in found]
        report.findings += found
    for host, why in published.down.items():
        n = sum(1 for r in wellformed if published.of(r).client.host == host)
        report.unchecked.append(
            f"registry {host} does not answer ({why}): not checked for {n} reference(s): "
            "that their tags and digests exist, registry yank advisories, newest releases"
        )
    return report


def _offline(ref: ImageRef, yanked: yanks.YankedList) -> list[Finding]:
    """Findings that need no registry: malformed, untagged, mutable, yanked in yanked.yml."""
    problem = malformed(ref)
    if problem:
        return [Finding(ref, problem)]
    out = []
    if ref.digest:
        entries = yanked.find(ref.distribution, digest=ref.digest)
    else:
        if ref.tag is None:
            out.append(Finding(ref, f"{ref} has no tag, which means latest: {PIN}"))
        elif mutable_tag(ref.tag):
            out.append(Finding(ref, f"{ref} is a mutable tag: {PIN}"))
        entries = yanked.find(ref.distribution, tag=ref.tag) if ref.tag else []
    if entries:
        out.append(Finding(ref, f"{ref} is {_yank_text(_yank_of(entries[0]), ref)}"))
    return out


def _check_ref(repo: Releases, ref: ImageRef) -> list[Finding]:
    if ref.digest:
        digest = ref.digest
        if repo.manifest(digest) is None:
            return [Finding(ref, f"{ref} does not exist in the registry")]
        yanked = repo.yanks(digest)
        if yanked:
            return [Finding(ref, f"{ref} is {_yank_text(yanked[0], ref)}")]
        return [Finding(ref, f"{ref.repository} is pinned by digest", problem=False)]

    out = []
    if ref.tag is None:
        out.append(Finding(ref, f"{ref} has no tag, which means latest: {PIN}"))
        digest = repo.digest("latest")
    elif ref.tag not in repo.tags:
        old = repo.yanked.find(ref.distribution, tag=ref.tag)
        why = f" (it was {_yank_text(_yank_of(old[0]), ref)})" if old else ""
        return [Finding(ref, f"{ref} does not exist in the registry{why}")]
    else:
        digest = repo.digest(ref.tag)
        if mutable_tag(ref.tag):
            out.append(Finding(ref, f"{ref} is a mutable tag: {PIN}"))
    yanked = repo.yanks(digest) if digest else []
    if yanked:
        out.append(Finding(ref, f"{ref} is {_yank_text(yanked[0], ref)}"))
    if not out:
        newest = repo.newest()
        if newest and digest != newest[1]:
            out.append(
                Finding(ref, f"{ref} is not the newest release ({newest[0]})", problem=False)
            )
    return out


def _yank_of(entry: yanks.YankedTag) -> Yank:
    return Yank(entry.tag, entry.reason, entry.date.isoformat(), entry.replaced_by)
