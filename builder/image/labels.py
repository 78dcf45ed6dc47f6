"""OCI labels every image carries, whichever engine built it.

They point back to the spec's commit and the lock, so anybody holding the image can find
the sources (``org.opencontainers.image.*``, the OCI annotation keys) and scistacks can
tell whether an image is current (``io.scistacks.*``). There is deliberately no
``created`` label: a wall-clock time would make every rebuild a different image.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from builder import git
from builder.lock.model import LockedDistribution
from builder.spec.layering import Distribution

SOURCE_ENV = "SCISTACKS_SOURCE_URL"

LOCK_HASH = "io.scistacks.lock-hash"
PLATFORM_LOCK_HASH = "io.scistacks.platform-lock-hash"
DISTRIBUTION = "io.scistacks.distribution"
ENGINE = "io.scistacks.engine"


def _without_credentials(url: str) -> str:
    # https://user:token@host/repo -> https://host/repo: labels are public
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url)


def source_url(root: Path) -> str | None:
    """Where the project lives: ``$SCISTACKS_SOURCE_URL``, else git's ``origin`` when it is
    an http(s) URL. The OCI label must be a URL: a local path or an scp-style
    ``git@host:org/repo`` gives none (converting it would guess at a web address)."""
    url = os.environ.get(SOURCE_ENV)
    if not url:
        url = git.origin(root)
        if not url or not re.match(r"https?://", url, re.IGNORECASE):
            return None
    return _without_credentials(url)


def revision(root: Path) -> str:
    return git.head(root) or "unknown"


def image_labels(
    root: Path, dist: Distribution, locked: LockedDistribution, platform: str, engine: str
) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.title": dist.name,
        "org.opencontainers.image.description": dist.description or dist.name,
        "org.opencontainers.image.version": locked.content_tag,  # the image's content tag
        "org.opencontainers.image.revision": revision(root),
        LOCK_HASH: locked.lock_hash(),
        PLATFORM_LOCK_HASH: locked.lock_hash(platform),
        DISTRIBUTION: dist.name,
        ENGINE: engine,
    }
    source = source_url(root)
    if source:
        labels["org.opencontainers.image.source"] = source
    return dict(sorted(labels.items()))
