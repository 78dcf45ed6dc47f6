"""Stage 8: hub. Reads hub config files (kept in the hub admins' own repositories), what
the registry publishes, and the project's ``yanked.yml``:

- ``bump`` rewrites every reference to our images to the newest published release that
  is not yanked, in the tag style the reference already uses (content ``lock-…`` or
  CalVer), and returns a diff;
- ``check`` reports, with file and line, references to yanked images, to mutable tags
  (``latest``, ``python-3.12``), to tags that do not exist, and untagged ones;
- ``yank`` records that a published tag must not be used, in ``yanked.yml`` and next to
  the image in the registry.

Releases are ordered by their CalVer tags (``YYYY.MM.DD``, then ``-2``, ``-3``…), which
publish gives every release; the content tag names the same digest.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import HubError, PublishError
from builder.fsutil import write_atomic
from builder.hub import yanked as yanks
from builder.hub.config import HubConfig, ImageRef, Ours, malformed
from builder.image import labels as oci_labels
from builder.project import Project
from builder.publish import DEFAULT_REGISTRY, target
from builder.publish.tags import DEFAULT_TAGGERS, POLICIES, VersionTagger
from builder.registry import Reference

__all__ = ["STYLES", "Yanked", "bump", "check", "mutable_tag", "yank"]

STYLES = ("content", "calver")
CALVER_RE = re.compile(r"(\d{4})\.(\d{2})\.(\d{2})(?:-(\d+))?\Z")
CONTENT_RE = re.compile(r"lock-[0-9a-f]{12}\Z")  # not lock-…-amd64: one platform only
PIN = "pin an immutable tag (scistacks hub bump does)"


def mutable_tag(tag: str) -> bool:
    """``latest`` and the version tags of the tag policy (``python-3.12``, ``r-4.4``)."""
    if tag == "latest":
        return True
    prefixes = {
        t.prefix or t.package
        for policy in (DEFAULT_TAGGERS, *POLICIES.values())
        for t in policy
        if isinstance(t, VersionTagger)
    }
    version = re.fullmatch(r"(.+)-\d+(?:\.\d+)*", tag)
    return bool(version) and version.group(1) in prefixes


def _calver_key(tag: str) -> tuple[int, int, int, int]:
    y, m, d, n = CALVER_RE.match(tag).groups()
    return int(y), int(m), int(d), int(n or 1)


def _style_of(tag: str | None) -> str | None:
    if tag and CALVER_RE.match(tag):
        return "calver"
    if tag and CONTENT_RE.match(tag):
        return "content"
    return None  # latest, a version tag, a git sha, a platform's tag, no tag


@dataclass(frozen=True)
class Yank:
    """Why a digest must not be used (from yanked.yml or the registry's advisory)."""

    tag: str
    reason: str
    date: str
    replaced_by: str | None = None


class Releases:
    """What the registry publishes for one distribution, read lazily and once."""

    def __init__(self, registry: str, name: str, yanked: yanks.YankedList):
        self.client, ref = target(registry, name)
        self.repository = ref.repository
        self.reference = Reference(ref.host, ref.repository)
        self.name = name
        self.yanked = yanked
        self._tags: list[str] | None = None
        self._manifests: dict[str, tuple[bytes, str, str] | None] = {}
        self._yanks: dict[str, list[Yank]] = {}

    @property
    def tags(self) -> list[str]:
        if self._tags is None:
            self._tags = self.client.tags(self.repository)
        return self._tags

    def manifest(self, reference: str) -> tuple[bytes, str, str] | None:
        if reference not in self._manifests:
            self._manifests[reference] = self.client.manifest(self.repository, reference)
        return self._manifests[reference]

    def digest(self, reference: str) -> str | None:
        found = self.manifest(reference)
        return found[2] if found else None

    def yanks(self, digest: str) -> list[Yank]:
        if digest not in self._yanks:
            out = [
                Yank(e.tag, e.reason, e.date.isoformat(), e.replaced_by)
                for e in self.yanked.find(self.name, digest=digest)
            ]
            out += [
                Yank(a.tag, a.reason, a.date, a.replaced_by)
                for a in yanks.advisories(self.client, self.repository, digest)
            ]
            self._yanks[digest] = out
        return self._yanks[digest]

    def releases(self) -> list[str]:
        """CalVer tags, newest first."""
        return sorted((t for t in self.tags if CALVER_RE.match(t)), key=_calver_key, reverse=True)

    def newest(self) -> tuple[str, str] | None:
        """(CalVer tag, digest) of the newest release that is not yanked."""
        for tag in self.releases():
            digest = self.digest(tag)
            if digest and not self.yanks(digest):
                return tag, digest
        return None

    def content_tag(self, digest: str) -> str | None:
        """The ``lock-…`` tag naming ``digest``: the one its lock-hash label gives, checked."""
        candidates = [t for t in self.tags if CONTENT_RE.match(t)]
        labels = self.client.config_labels(self.repository, digest) or {}
        guess = f"lock-{labels.get(oci_labels.LOCK_HASH, '')[:12]}"
        if guess in candidates:
            candidates.remove(guess)
            candidates.insert(0, guess)
        return next((t for t in candidates if self.digest(t) == digest), None)

    def tag_for(self, release: tuple[str, str], style: str) -> str:
        calver, digest = release
        if style == "content":
            return self.content_tag(digest) or calver
        return calver


class _Registries:
    """One ``Releases`` per repository; registry errors name the reference's file/line."""

    def __init__(self, project: Project, refs: Iterable[ImageRef], *, lenient: bool = False):
        # outside a scistacks checkout only the registry's advisories are known
        self._yanked = yanks.load(project) if project is not None else yanks.YankedList()
        self._repos: dict[tuple[str, str], Releases] = {}
        self.down: dict[str, str] = {}  # host -> why (lenient: the caller reports it)
        pinged: set[str] = set()
        for ref in refs:
            repo = self.of(ref)
            if repo.client.host in pinged:
                continue
            pinged.add(repo.client.host)
            try:
                repo.client.ping()
            except PublishError as exc:
                if lenient:
                    self.down[repo.client.host] = exc.message
                    continue
                raise HubError(
                    f"registry {repo.client.host} does not answer ({exc.message})",
                    file=ref.file,
                    field=f"line {ref.line}",
                ) from None

    def answers(self, ref: ImageRef) -> bool:
        return self.of(ref).client.host not in self.down

    def of(self, ref: ImageRef) -> Releases:
        key = (ref.registry, ref.distribution)
        if key not in self._repos:
            self._repos[key] = Releases(ref.registry, ref.distribution, self._yanked)
        return self._repos[key]


@contextlib.contextmanager
def _at(ref: ImageRef) -> Iterator[None]:
    try:
        yield
    except PublishError as exc:
        raise HubError(exc.message, file=ref.file, field=f"line {ref.line}") from None


def _load(
    project: Project | None, catalog, paths: Iterable[str | Path], registries
) -> list[HubConfig]:
    # no checkout: every image directly under the namespace counts as ours
    ours = Ours(_registries(registries), catalog.names() if catalog is not None else None)
    configs = [HubConfig.load(p, ours) for p in paths]
    if not configs:
        raise HubError("name at least one hub config file")
    return configs


def _registries(registries: Iterable[str] | None) -> list[str]:
    out = []
    for value in registries or (DEFAULT_REGISTRY,):
        ref = Reference.parse(value.rstrip("/"))  # one line if it is not REGISTRY/NAMESPACE
        if ref.tag or ref.digest:
            raise HubError(
                f"expected REGISTRY/NAMESPACE without a tag or digest, got {value!r}",
                field="--registry",
            )
        out.append(str(ref))
    return out


def _yank_text(y: Yank, ref: ImageRef) -> str:
    text = f"yanked on {y.date} ({y.tag}): {y.reason}"
    if y.replaced_by:
        text += f"; replaced by {ref.with_tag(y.replaced_by)}"
    return text


# ---------------------------------------------------------------- bump


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
    catalog,
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
    configs = _load(project, catalog, paths, registries)
    for ref in (r for c in configs for r in c.refs):
        problem = malformed(ref)
        if problem:  # knowable without the registry: refused before asking it
            raise HubError(problem, file=ref.file, field=f"line {ref.line}")
    published = _Registries(project, (r for c in configs for r in c.refs))
    results = []
    for config in configs:
        changes: dict[ImageRef, str] = {}
        for ref in config.refs:
            if ref.digest:
                continue  # pinned by digest: the admin chose that exact image
            with _at(ref):
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
    wanted = style or _style_of(ref.tag) or "content"
    current = (
        _style_of(ref.tag) == wanted and ref.tag in repo.tags and repo.digest(ref.tag) == newest[1]
    )
    return None if current else repo.tag_for(newest, wanted)


# ---------------------------------------------------------------- check


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
    catalog,
    paths: Iterable[str | Path],
    registries: Iterable[str] | None = None,
    *,
    verify=None,
) -> CheckReport:
    """Yanked, mutable, missing and untagged references, in file and line order; with
    ``verify`` (a cosign.Identity), unsigned ones and ones signed by someone else too.

    What needs no registry (malformed references, mutable tags, yanks in yanked.yml) is
    found first; a registry that does not answer leaves its checks in ``unchecked``."""
    configs = _load(project, catalog, paths, registries)
    refs = [r for c in configs for r in c.refs]
    report = CheckReport(refs)
    known = yanks.load(project) if project is not None else yanks.YankedList()
    offline = {ref: _offline(ref, known) for ref in refs}
    wellformed = [ref for ref in refs if not malformed(ref)]
    published = _Registries(project, wellformed, lenient=True)
    for ref in refs:
        found = list(offline[ref])
        if ref in wellformed and published.answers(ref):
            with _at(ref):
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


from builder.hub.withdraw import Yanked, yank  # noqa: E402  (it uses this module)
