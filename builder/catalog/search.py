"""Stage 8 (catalog). Reads a ``Site`` and a query such as ``gdal >=3.9``; writes nothing:
returns the distributions and platforms whose lock satisfies it.

A query is a package name and an optional version constraint. Conda packages are matched
with conda's version spec semantics (rattler's ``VersionSpec``, as
``builder.spec.matchspec`` parses specs), PyPI packages with ``packaging``'s specifiers.
The search page's filter box (static/catalog.js) implements the same grammar in the
browser; tests check both agree on real locks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import rattler

from builder.catalog.model import PYPI, Site
from builder.project import OCI_PLATFORMS
from builder.spec import matchspec

QUERY_RE = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(.*?)\s*\Z")
TYPOGRAPHIC = {"\u2265": ">=", "\u2264": "<=", "\u2260": "!="}  # ≥ ≤ ≠


@dataclass(frozen=True)
class Query:
    name: str  # normalised: lower case
    constraint: str  # "" = any version

    @classmethod
    def parse(cls, text: str) -> Query:
        """``gdal``, ``gdal >=3.9``, ``gdal>=3.9,<4``, ``gdal 3.9.*``, ``gdal ≥ 3.9``."""
        for typographic, ascii_ in TYPOGRAPHIC.items():
            text = text.replace(typographic, ascii_)
        m = QUERY_RE.match(text)
        if not m:
            raise ValueError(f"expected a package name and an optional version, got {text!r}")
        name, constraint = m.group(1).lower(), re.sub(r"\s+", "", m.group(2))
        if constraint in ("", "*"):
            return cls(name, "")
        matchspec.parse(f"{name} {constraint}")  # ValueError with rattler's reason
        return cls(name, constraint)

    def matches(self, version: str, source: str = "conda") -> bool:
        if not self.constraint:
            return True
        if source == PYPI:
            from packaging.specifiers import InvalidSpecifier, SpecifierSet
            from packaging.version import InvalidVersion, Version

            try:
                return Version(version) in SpecifierSet(self.constraint.replace("=*", ""))
            except (InvalidSpecifier, InvalidVersion):
                return False
        try:
            return rattler.VersionSpec(self.constraint).matches(rattler.Version(version))
        except Exception:  # rattler's own parse errors
            return False


@dataclass(frozen=True)
class Hit:
    distribution: str
    platform: str  # linux/amd64
    name: str
    version: str
    build: str
    source: str


def search(site: Site, text: str) -> list[Hit]:
    """Every (distribution, platform) whose committed lock has a package satisfying it."""
    query = Query.parse(text)
    out = []
    for dist in site.distributions.values():
        for plat, rows in dist.packages.items():
            for row in rows:
                if row.name.lower() == query.name and query.matches(row.version, row.source):
                    shown = OCI_PLATFORMS.get(plat, plat)
                    out.append(Hit(dist.name, shown, row.name, row.version, row.build, row.source))
    return out
