"""Rewrite a layer that ``docker build`` made so that the same build gives the same bytes.

The system image's ``RUN`` layers (``apt-get install``, the ``jovyan`` user) and the
``postBuild`` layer carry the build's wall-clock time in every file apt, dpkg or useradd
touched, plus logs and caches that differ on every run. After ``docker builder prune``
they would come back as new layers, so a rebuild of the same lock would be a new image.
Here each such layer is re-written: mtimes clamped to ``SOURCE_DATE_EPOCH``, no
access/change times, no user or group names, and the files below dropped. Owners, modes,
links, whiteouts and extended attributes (file capabilities) are kept.
"""

from __future__ import annotations

import fnmatch
import hashlib
import tarfile
from pathlib import Path
from typing import IO

from builder.image.layers import HashingWriter, LayerFile

# Logs and caches that change on every apt or useradd run and that nothing reads back.
DROPPED = (
    "var/log/apt/*",
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/archives/partial/*",
    "var/lib/apt/lists/*",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "var/cache/ldconfig/aux-cache",
    "tmp/*",
    "root/.cache/*",
)
# PAX records that are times; everything else (path, linkpath, SCHILY.xattr.*) stays.
_TIME_RECORDS = {"atime", "ctime", "mtime", "LIBARCHIVE.creationtime"}


def dropped(path: str) -> bool:
    path = path.removeprefix("./").lstrip("/")
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in DROPPED)


def normalise_layer(src: IO[bytes], out: Path, epoch: int) -> LayerFile:
    """Read the layer tar ``src`` and write its normalised form at ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw:
        sink = HashingWriter(raw)
        with (
            tarfile.open(fileobj=src, mode="r|") as tin,
            tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tout,
        ):
            for member in tin:
                if dropped(member.name):
                    continue
                member.mtime = min(int(member.mtime), epoch)
                member.uname = member.gname = ""
                member.pax_headers = {
                    k: v for k, v in member.pax_headers.items() if k not in _TIME_RECORDS
                }
                if member.isfile():
                    tout.addfile(member, tin.extractfile(member))
                else:
                    tout.addfile(member)
        size, digest = sink.size, sink.hash.hexdigest()
    return LayerFile(out, f"sha256:{digest}", size)


def spool(src: IO[bytes], dest: IO[bytes]) -> str:
    """Copy ``src`` to ``dest``; return the sha256 of what was copied (a layer's diff_id)."""
    digest = hashlib.sha256()
    while chunk := src.read(1 << 20):
        digest.update(chunk)
        dest.write(chunk)
    return f"sha256:{digest.hexdigest()}"
