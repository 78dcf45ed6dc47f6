"""Lock entries for test wheels (the wheels themselves: ``pypi_index.make_wheel``).

(A module of its own: test modules cannot import a conftest.py by name.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from builder.lock.model import PypiPackage


def locked_wheel(
    wheel: Path, platform: str, url: str | None = None, depends: tuple[str, ...] = ()
) -> PypiPackage:
    """The lock entry of ``wheel`` (its URL: ``url``, else the file itself)."""
    stem = wheel.name.removesuffix(".whl").split("-")
    return PypiPackage(
        name=stem[0].replace("_", "-").lower(),
        version=stem[1],
        platform=platform,
        url=url or wheel.resolve().as_uri(),
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        depends=depends,
    )
