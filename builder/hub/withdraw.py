"""``scistacks yank``: withdraw a published release, in yanked.yml and in the registry.

Whatever needs no registry (a malformed or mutable tag) is refused before it is asked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builder.errors import HubError, PublishError
from builder.hub import yanked as yanks
from builder.hub.config import TAG_RE
from builder.hub.releases import Releases, namespaces
from builder.project import Project
from builder.publish.tags import mutable_tag

if TYPE_CHECKING:
    from builder.spec import Catalog


@dataclass(frozen=True)
class Yanked:
    entry: yanks.YankedTag
    reference: str  # REGISTRY/NAMESPACE/NAME:TAG
    recorded: bool  # False: yanked.yml held it already
    artifact: str  # digest of the registry advisory


def yank(
    project: Project,
    catalog: Catalog | None,
    name_tag: str,
    reason: str,
    registry: str | None = None,
    *,
    replaced_by: str | None = None,
    today: dt.date | None = None,
) -> Yanked:
    """Mark NAME:TAG as not to be used: registry advisory first, then yanked.yml."""
    name, _, tag = name_tag.partition(":")
    if not name or not tag:
        raise HubError(f"expected NAME:TAG, got {name_tag!r}", field="NAME:TAG")
    catalog.get(name)  # an unknown distribution: one line naming the known ones
    reason = " ".join(reason.split())
    if not reason:
        raise HubError("say why the tag is yanked", field="--reason")
    yanks.load(project)  # a broken yanked.yml fails before the registry is touched
    # what needs no registry is refused before asking it
    if not TAG_RE.match(tag):
        raise HubError(f"malformed tag {tag!r}", field="NAME:TAG")
    if mutable_tag(tag):
        raise HubError(
            f"{tag} is a mutable tag; yank the immutable tag it points at (its lock-… "
            "content tag or YYYY.MM.DD release: scistacks hub check lists them)",
            field="NAME:TAG",
        )
    if replaced_by is not None and (mutable_tag(replaced_by) or not TAG_RE.match(replaced_by)):
        raise HubError(
            f"{replaced_by} is a mutable or malformed tag; name the release to use",
            field="--replaced-by",
        )
    registry = namespaces([registry] if registry else None)[0]
    repo = Releases(registry, name, yanks.YankedList())
    ref = repo.reference.with_tag(tag)
    try:
        repo.client.ping()
    except PublishError as exc:
        raise HubError(f"registry {repo.client.host} does not answer ({exc.message})") from None
    found = repo.manifest(tag)
    if found is None:
        raise HubError(f"{ref} does not exist in the registry; nothing yanked", field="NAME:TAG")
    raw, media, digest = found
    if mutable_tag(tag):
        pinned = repo.content_tag(digest)
        target_tag = f" ({repo.reference.with_tag(pinned)})" if pinned else ""
        raise HubError(
            f"{tag} is a mutable tag; yank the immutable tag it points at{target_tag}",
            field="NAME:TAG",
        )
    if replaced_by is not None:
        other = repo.digest(replaced_by)
        if other is None:
            raise HubError(
                f"{repo.reference.with_tag(replaced_by)} does not exist in the registry",
                field="--replaced-by",
            )
        if other == digest or mutable_tag(replaced_by):
            raise HubError(
                f"{replaced_by} is the same image or a mutable tag; name the release to use",
                field="--replaced-by",
            )
    entry = yanks.YankedTag(
        distribution=name,
        tag=tag,
        digest=digest,
        reason=reason,
        date=today or dt.datetime.now(dt.UTC).date(),
        replaced_by=replaced_by,
    )
    subject = yanks.Subject(repo.repository, digest, media, len(raw))
    artifact = yanks.attach(repo.client, subject, entry)
    recorded = yanks.add(project, entry)
    return Yanked(entry, str(ref), recorded, artifact)
