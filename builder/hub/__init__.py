"""Stage 8: hub. Reads hub config files (kept in the hub admins' own repositories), what
the registry publishes, and the project's ``yanked.yml``:

- ``bump`` (``builder.hub.bumping``) rewrites every reference to our images to the newest
  published release that is not yanked, and returns a diff;
- ``check`` (``builder.hub.checking``) reports, with file and line, references to yanked
  images, to mutable tags, to tags that do not exist, and untagged ones;
- ``yank`` (``builder.hub.withdraw``) records that a published tag must not be used, in
  ``yanked.yml`` and next to the image in the registry.

What the registry publishes is read through ``builder.hub.releases``; the config files
through ``builder.hub.config``; ``yanked.yml`` through ``builder.hub.yanked``.
"""

from builder.hub.bumping import STYLES, BumpedFile, bump
from builder.hub.checking import CheckReport, Finding, check
from builder.hub.releases import Releases, Yank
from builder.hub.withdraw import Yanked, yank
from builder.publish.tags import mutable_tag

__all__ = [
    "STYLES",
    "BumpedFile",
    "CheckReport",
    "Finding",
    "Releases",
    "Yank",
    "Yanked",
    "bump",
    "check",
    "mutable_tag",
    "yank",
]
