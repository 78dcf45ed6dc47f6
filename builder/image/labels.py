"""OCI labels every image carries, whichever engine built it.

They point back to the spec's commit and the lock, so anybody holding the image can find
the sources (``org.opencontainers.image.*``, the OCI annotation keys) and scistacks can
tell whether an image is current (``io.scistacks.*``). There is deliberately no
``created`` label: a wall-clock time would make every rebuild a different image.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from builder.lock.model import LockedDistribution
from builder.spec.layering import Distribution

SOURCE_ENV = "SCISTACKS_SOURCE_URL"

LOCK_HASH = "io.scistacks.lock-hash"
PLATFORM_LOCK_HASH = "io.scistacks.platform-lock-hash"
DISTRIBUTION = "io.scistacks.distribution"
ENGINE = "io.scistacks.engine"


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = proc.stdout.strip()
    return out if proc.returncode == 0 and out else None


def _without_credentials(url: str) -> str:
    # https://user:token@host/repo -> https://host/repo: labels are public
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url)


def source_url(root: Path) -> str | None:
    """Where the project lives: ``$SCISTACKS_SOURCE_URL``, else git's ``origin``."""
    url = os.environ.get(SOURCE_ENV) or _git(root, "remote", "get-url", "origin")
    return _without_credentials(url) if url else None


def revision(root: Path) -> str:
    return _git(root, "rev-parse", "HEAD") or "unknown"


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
