"""conda names -> PyPI names: which Python packages a conda lock already installs.

The mapping is data (``pypi_names.yml``, next to this module); this module reads it and
applies its rule to locked conda packages.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from builder.lock.model import LockedPackage

DATA = Path(__file__).with_name("pypi_names.yml")


@functools.cache
def mapping() -> dict[str, str | None]:
    """conda name -> PyPI name (normalised), or None for a conda-only package."""
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    return {
        conda: canonicalize_name(pypi) if pypi is not None else None
        for conda, pypi in (data.get("mapping") or {}).items()
    }


def pypi_name(package: LockedPackage) -> str | None:
    """The PyPI project a locked conda package installs, or None if it is no Python package."""
    table = mapping()
    if package.name in table:
        return table[package.name]
    depends_on_python = any(d.split()[0] == "python" for d in package.depends if d.strip())
    return canonicalize_name(package.name) if depends_on_python else None


@dataclass(frozen=True)
class Provided:
    """A PyPI project that conda installs: the conda package and its version."""

    pypi: str
    conda: LockedPackage

    @property
    def version(self) -> Version | None:
        """The conda version read as PEP 440 (None: it does not read as one)."""
        try:
            return Version(self.conda.version)
        except InvalidVersion:
            return None


def provided(packages: list[LockedPackage]) -> dict[str, Provided]:
    """PyPI name -> what conda installs under it. Where two conda packages map to one name
    (a metapackage over the package it wraps), the one the mapping renames wins."""
    table = mapping()
    out: dict[str, Provided] = {}
    for p in sorted(packages, key=lambda p: (p.name not in table, p.name)):
        name = pypi_name(p)
        if name is not None and name not in out:
            out[name] = Provided(name, p)
    return dict(sorted(out.items()))
