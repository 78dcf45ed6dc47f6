"""Download the locked package archives of one platform and check them against the lock.

Lockfiles carry canonical URLs (``https://conda.anaconda.org/...``); the channel map says
where to read them instead (a mirror, a bundled folder). Every archive must match the
lock's sha256 and md5 before anything installs it: a mismatch is a supply-chain problem,
never something to retry around. Verified archives are kept under ``build/cache/pkgs``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from builder.errors import BuildError
from builder.fsutil import NO_SPACE
from builder.lock.channels import ChannelMap, rattler_path
from builder.lock.model import LockedPackage

CHUNK = 1 << 20


def _digests(path: Path) -> tuple[str, str]:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def mismatch(package: LockedPackage, path: Path) -> str | None:
    """What does not match the lock (``"sha256 abc... != lock def..."``), or None."""
    sha256, md5 = _digests(path)
    if package.sha256 and sha256 != package.sha256.lower():
        return f"sha256 {sha256[:16]}... != lock {package.sha256[:16]}..."
    if package.md5 and md5 != package.md5.lower():
        return f"md5 {md5} != lock {package.md5}"
    if not package.sha256 and not package.md5:
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
        if dest.is_file() and mismatch(package, dest) is None:
            return package.name, dest
        source = channel_map.to_mirror(package.url)
        try:
            _download(source, dest)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno in NO_SPACE:
                raise  # the cache's folder is at fault: the caller names it
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            raise BuildError(
                f"cannot download {package.name} {package.version} from {source}: {reason}",
                file=lockfile,
            ) from None
        problem = mismatch(package, dest)
        if problem:
            dest.unlink(missing_ok=True)
            raise BuildError(
                f"{package.name} {package.version} {package.build}: hash mismatch for {source}: "
                f"{problem} (the archive is not the one that was locked)",
                file=lockfile,
            )
        return package.name, dest

    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        return dict(pool.map(one, sorted(packages)))
