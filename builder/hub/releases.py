"""What the registry publishes for our images, as hub bump, check and yank see it:
``Releases`` per repository (CalVer releases, content tags, yanks), ``Registries`` (one
``Releases`` per repository, errors naming the reference's file and line), the tag
conventions of a reference and the hub config files named on the command line.

Releases are ordered by their CalVer tags (``YYYY.MM.DD``, then ``-2``, ``-3``…), which
publish gives every release; the content tag names the same digest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import HubError, PublishError
from builder.hub import yanked as yanks
from builder.hub.config import HubConfig, ImageRef, Ours
from builder.image import labels as oci_labels
from builder.lock.model import content_tag_of
from builder.project import Project
from builder.publish import DEFAULT_REGISTRY, target
from builder.publish.tags import CALVER_RE, CONTENT_RE, calver_key
from builder.registry import Reference

if TYPE_CHECKING:
    from builder.spec import Catalog


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
        return sorted((t for t in self.tags if CALVER_RE.match(t)), key=calver_key, reverse=True)

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
        guess = content_tag_of(labels.get(oci_labels.LOCK_HASH, ""))
        if guess in candidates:
            candidates.remove(guess)
            candidates.insert(0, guess)
        return next((t for t in candidates if self.digest(t) == digest), None)

    def tag_for(self, release: tuple[str, str], style: str) -> str:
        calver, digest = release
        if style == "content":
            return self.content_tag(digest) or calver
        return calver


class Registries:
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
def reported_at(ref: ImageRef) -> Iterator[None]:
    try:
        yield
    except PublishError as exc:
        raise HubError(exc.message, file=ref.file, field=f"line {ref.line}") from None


def load_configs(
    project: Project | None, catalog: Catalog | None, paths: Iterable[str | Path], registries
) -> list[HubConfig]:
    # no checkout: every image directly under the namespace counts as ours
    ours = Ours(namespaces(registries), catalog.names() if catalog is not None else None)
    configs = [HubConfig.load(p, ours) for p in paths]
    if not configs:
        raise HubError("name at least one hub config file")
    return configs


def namespaces(registries: Iterable[str] | None) -> list[str]:
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
