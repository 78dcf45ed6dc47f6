"""Stage 8: catalog. Reads the specs, the lockfiles, ``yanked.yml`` and what the registry
publishes (releases, attached SBOM, smoke summary and profile snippet, yank advisories);
writes a static web site into ``--output``: the distribution tree, a page per
distribution (releases, packages, diffs, charts, profile snippet, run commands) and a
cross-distribution package search.

The site is written into a temporary folder next to the output and renamed into place,
so a reader (or a web server) never sees half a site.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ScistacksError
from builder.project import Project
from builder.spec import Catalog


class CatalogError(ScistacksError):
    """The catalog could not be written, or --strict refused what it found."""


@dataclass
class Built:
    output: Path
    pages: int
    warnings: list[str]
    registry_error: str | None
    seconds: float


def build(
    project: Project,
    catalog: Catalog,
    output: str | os.PathLike,
    registry: str | None,
    *,
    strict: bool = False,
    echo=lambda _: None,
) -> Built:
    """Write the site to ``output`` (replacing what is there, in one rename)."""
    from builder.catalog.model import collect
    from builder.catalog.render import write_site

    started = time.monotonic()
    site = collect(project, catalog, registry, echo=echo)
    if site.registry_error:
        echo(f"warning: {site.registry_error}: the site shows the lockfiles only")
    out = Path(output).resolve()
    if out.exists() and not out.is_dir():
        raise CatalogError("exists and is not a folder", file=str(output))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        written = write_site(site, tmp)
        os.chmod(tmp, 0o755)
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    built = Built(
        out,
        sum(p.suffix == ".html" for p in written),
        site.warnings,
        site.registry_error,
        time.monotonic() - started,
    )
    if strict and (site.registry_error or site.warnings):
        first = site.registry_error or site.warnings[0]
        raise CatalogError(f"--strict: {first}", file=str(output))
    return built


def _swap(new: Path, out: Path) -> None:
    """``new`` takes ``out``'s place: the old site is moved aside first, then deleted."""
    if not out.exists():
        os.rename(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(new, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
