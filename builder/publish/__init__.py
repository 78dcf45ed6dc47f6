"""Stage 6: publish (``builder.publish.push``); the publish record and the smoke results it
requires in ``builder.publish.record``; tags, SBOM, signing and the local registry beside them."""

from builder.publish.push import (
    DEFAULT_REGISTRY,
    PACKAGES_TYPE,
    SBOM_TYPE,
    SMOKE_TYPE,
    already_published,
    publish,
    target,
)
from builder.publish.record import Published, smoke_is_current
from builder.publish.sbom import sbom_json
from builder.publish.tags import TagSet

__all__ = [
    "DEFAULT_REGISTRY",
    "PACKAGES_TYPE",
    "SBOM_TYPE",
    "SMOKE_TYPE",
    "Published",
    "TagSet",
    "already_published",
    "publish",
    "sbom_json",
    "smoke_is_current",
    "target",
]
