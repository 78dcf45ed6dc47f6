"""Tag policy, declared as data: each tagger is a tiny class with one method.

Immutable tags (content, CalVer, git sha) name one image forever: publishing different
content under one is refused. Mutable tags (latest, version tags) move, and only after
every platform's image and the manifest list are pushed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from builder.lock.model import LockedDistribution


@dataclass(frozen=True)
class TagContext:
    """What taggers may look at: the lock, the commit, the day, and what is published."""

    distribution: str
    locked: LockedDistribution
    git_sha: str | None = None
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    existing_tags: frozenset[str] = frozenset()


class Tagger:
    mutable = False

    def tags(self, ctx: TagContext) -> list[str]:
        raise NotImplementedError


class ContentTagger(Tagger):
    """Same lock, same tag: ``lock-<12 hex of the lock hash>``."""

    def tags(self, ctx):
        return [content_tag(ctx.locked)]


class CalVerTagger(Tagger):
    """``YYYY.MM.DD``; a second release that day gets ``YYYY.MM.DD-2``, and so on."""

    def tags(self, ctx):
        day = ctx.today.strftime("%Y.%m.%d")
        if day not in ctx.existing_tags:
            return [day]
        n = 2
        while f"{day}-{n}" in ctx.existing_tags:
            n += 1
        return [f"{day}-{n}"]


class GitShaTagger(Tagger):
    """The short commit of the specs the image was built from."""

    def tags(self, ctx):
        return [ctx.git_sha[:12]] if ctx.git_sha else []


class LatestTagger(Tagger):
    mutable = True

    def tags(self, ctx):
        return ["latest"]


@dataclass(frozen=True)
class VersionTagger(Tagger):
    """``python-3.12`` from the locked python. Only when every platform agrees, so a
    multi-arch tag never claims a version one of its platforms lacks."""

    package: str
    prefix: str | None = None
    parts: int = 2
    mutable = True

    def tags(self, ctx):
        versions = {ctx.locked.version_of(self.package, p) for p in ctx.locked.platforms}
        if len(versions) != 1 or None in versions:
            return []
        release = re.split(r"[^0-9.]", versions.pop())[0].strip(".")
        short = ".".join(release.split(".")[: self.parts])
        return [f"{self.prefix or self.package}-{short}"] if short else []


def content_tag(locked: LockedDistribution) -> str:
    return locked.content_tag  # the lock owns its name: image labels use the same


# What each kind of tag looks like, for readers of a registry (hub, profiles, publish).
CALVER_RE = re.compile(r"(\d{4})\.(\d{2})\.(\d{2})(?:-(\d+))?\Z")
CONTENT_RE = re.compile(r"lock-[0-9a-f]{12}\Z")  # not lock-…-amd64: one platform only
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}\Z")


def calver_key(tag: str) -> tuple[int, int, int, int]:
    """Sort key of a CalVer tag: ``2026.12.01-10`` after ``2026.12.01-9``."""
    y, m, d, n = CALVER_RE.match(tag).groups()
    return int(y), int(m), int(d), int(n or 1)


def style_of(tag: str | None) -> str | None:
    """``calver`` or ``content`` for an immutable tag of ours, else None."""
    if tag and CALVER_RE.match(tag):
        return "calver"
    if tag and CONTENT_RE.match(tag):
        return "content"
    return None  # latest, a version tag, a git sha, a platform's tag, no tag


# The policy. Version tags appear only for packages an image actually has.
DEFAULT_TAGGERS: tuple[Tagger, ...] = (
    ContentTagger(),
    CalVerTagger(),
    GitShaTagger(),
    LatestTagger(),
    VersionTagger("python"),
    VersionTagger("r-base", prefix="r"),
    VersionTagger("pytorch"),
    VersionTagger("cuda-version", prefix="cuda"),
)
POLICIES: dict[str, tuple[Tagger, ...]] = {}  # per-distribution overrides, by name


@dataclass(frozen=True)
class TagSet:
    immutable: tuple[str, ...]
    mutable: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.immutable + self.mutable


def tags_for(ctx: TagContext) -> TagSet:
    immutable: list[str] = []
    mutable: list[str] = []
    for tagger in POLICIES.get(ctx.distribution, DEFAULT_TAGGERS):
        bucket = mutable if tagger.mutable else immutable
        bucket += [t for t in tagger.tags(ctx) if t not in bucket]
    return TagSet(tuple(immutable), tuple(mutable))


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
