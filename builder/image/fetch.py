"""Download the locked package archives of one platform and check them against the lock.

Lockfiles carry canonical URLs (``https://conda.anaconda.org/...``); the channel map says
where to read them instead (a mirror, a bundled folder). Every archive must match the
lock's sha256 and md5 before anything installs it: a mismatch is a supply-chain problem,
never something to retry around. Verified archives are kept under ``build/cache/pkgs``,
the locked PyPI wheels (sha256) beside them in ``build/cache/pkgs/pypi``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from builder.errors import BuildError
from builder.fsutil import NO_SPACE
from builder.lock.channels import ChannelMap, rattler_path
from builder.lock.model import LockedPackage, PypiPackage

CHUNK = 1 << 20


def _digests(path: Path) -> tuple[str, str]:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def mismatch(package: LockedPackage | PypiPackage, path: Path) -> str | None:
    """What does not match the lock (``"sha256 abc... != lock def..."``), or None."""
    sha256, md5 = _digests(path)
    locked_md5 = getattr(package, "md5", "")  # a wheel is locked by its sha256 alone
    if package.sha256 and sha256 != package.sha256.lower():
        return f"sha256 {sha256[:16]}... != lock {package.sha256[:16]}..."
    if locked_md5 and md5 != locked_md5.lower():
        return f"md5 {md5} != lock {locked_md5}"
    if not package.sha256 and not locked_md5:
        return "the lock has no sha256 or md5 for it"
    return None


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            if url.startswith("file://"):
                with open(rattler_path(url), "rb") as src:
                    shutil.copyfileobj(src, out, CHUNK)
            else:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    shutil.copyfileobj(resp, out, CHUNK)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _verified(package, dest: Path, source: str, what: str, kind: str, lockfile: str) -> Path:
    """``dest`` once it holds the locked file: the cached copy, or one read from ``source``.
    A file that does not match is removed before the error is raised."""
    if dest.is_file() and mismatch(package, dest) is None:
        return dest
    try:
        _download(source, dest)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            raise  # the cache's folder is at fault: the caller names it
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise BuildError(f"cannot download {what} from {source}: {reason}", file=lockfile) from None
    problem = mismatch(package, dest)
    if problem:
        dest.unlink(missing_ok=True)
        raise BuildError(
            f"{what}: hash mismatch for {source}: {problem} (the {kind} is not the one that "
            "was locked)",
            file=lockfile,
        )
    return dest


def fetch(
    packages: list[LockedPackage],
    cache: Path,
    channel_map: ChannelMap,
    *,
    lockfile: str,
    workers: int = 6,
) -> dict[str, Path]:
    """Each package's verified archive, ``{name: path}``, downloading what the cache lacks."""

    def one(package: LockedPackage) -> tuple[str, Path]:
        dest = cache / (package.subdir or "unknown") / package.file_name
        source = channel_map.to_mirror(package.url)
        what = f"{package.name} {package.version} {package.build}"
        return package.name, _verified(package, dest, source, what, "archive", lockfile)

    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        return dict(pool.map(one, sorted(packages)))


def fetch_wheels(
    wheels: list[PypiPackage],
    cache: Path,
    source: Callable[[str], str],
    *,
    lockfile: str,
    workers: int = 6,
) -> dict[str, Path]:
    """Each locked wheel, verified against its sha256, ``{name: path}``. ``source`` maps a
    locked URL to where it is read (a mapped index's folder, or the URL itself)."""

    def one(wheel: PypiPackage) -> tuple[str, Path]:
        dest = cache / "pypi" / wheel.file_name
        what = f"pypi {wheel.name} {wheel.version}"
        return wheel.name, _verified(wheel, dest, source(wheel.url), what, "wheel", lockfile)

    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        return dict(pool.map(one, sorted(wheels)))
