"""The lock as the rest of the pipeline sees it: per platform, a list of exact packages.

Later stages (context, image, smoke, publish, diff) read lockfiles through ``read_lock``
and this model; they never solve again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def content_tag_of(lock_hash: str) -> str:
    """``lock-<12 hex>``: the tag and version label of the image of a lock with this hash."""
    return f"lock-{lock_hash[:12]}"


@dataclass(frozen=True, order=True)
class LockedPackage:
    name: str
    version: str
    build: str
    platform: str  # the target platform this entry is locked for (not the package subdir)
    url: str
    md5: str
    sha256: str
    subdir: str = ""
    depends: tuple[str, ...] = ()
    category: str = "main"

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def channel(self) -> str:
        """Canonical channel URL, e.g. https://conda.anaconda.org/conda-forge/."""
        tail = f"/{self.subdir}/{self.file_name}" if self.subdir else f"/{self.file_name}"
        base = self.url[: -len(tail)] if self.url.endswith(tail) else self.url.rsplit("/", 2)[0]
        return base.rstrip("/") + "/"

    @property
    def spec(self) -> str:
        """``name=version=build``: the exact pin repo2docker's environment.yml takes."""
        return f"{self.name}={self.version}={self.build}"


@dataclass(frozen=True, order=True)
class PypiPackage:
    """A wheel locked from a PyPI index (conda-lock's ``manager: pip`` entry)."""

    name: str  # PEP 503 normalised
    version: str
    platform: str  # the target platform this entry is locked for
    url: str  # the wheel; under the canonical index URL when the index is mapped
    sha256: str
    depends: tuple[str, ...] = ()  # "name specifier" of each requirement, as uv resolved them
    category: str = "main"

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("#", 1)[0]

    @property
    def spec(self) -> str:
        """``name==version``: the pin a pip section takes."""
        return f"{self.name}=={self.version}"


@dataclass
class LockedDistribution:
    name: str
    platforms: tuple[str, ...]
    channels: tuple[str, ...]  # canonical channel names/URLs, in priority order
    packages: dict[str, list[LockedPackage]]  # platform -> packages, sorted by name
    inputs_hash: str
    metadata: dict[str, str] = field(default_factory=dict)  # scistacks custom metadata
    pypi: dict[str, list[PypiPackage]] = field(default_factory=dict)  # platform -> wheels, by name

    def lock_hash(self, platform: str | None = None) -> str:
        """Content identity: the same packages give the same hash, whatever the spec says.

        Image tags and skip-unchanged logic hang from this."""
        h = hashlib.sha256()
        for plat in sorted(self.packages) if platform is None else [platform]:
            for p in sorted(self.packages[plat], key=lambda p: p.name):
                h.update(f"{plat} {p.name} {p.version} {p.build} {p.sha256 or p.md5}\n".encode())
            for w in sorted(self.pypi.get(plat, ())):
                # "pypi:" cannot start a conda name: no collision with the lines above
                h.update(f"{plat} pypi:{w.name} {w.version} {w.sha256}\n".encode())
        return h.hexdigest()

    @property
    def content_tag(self) -> str:
        """The image tag (and OCI version label) naming these exact packages everywhere."""
        return content_tag_of(self.lock_hash())

    def by_name(self, platform: str) -> dict[str, LockedPackage]:
        return {p.name: p for p in self.packages[platform]}

    def version_of(self, package: str, platform: str | None = None) -> str | None:
        for plat in [platform] if platform else self.platforms:
            for p in self.packages.get(plat, ()):
                if p.name == package:
                    return p.version
        return None
