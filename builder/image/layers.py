"""Environment layers: which packages go in which layer, and writing each layer reproducibly.

Layer plan (``plan``). An image holds one conda environment, but a one-package bump should
re-push a small part of it, and a child distribution should share its parent's layers:

- Packages are first split by the distribution that brought them in, root first
  (``base`` below ``pangeo`` below ``gpu-ml``). A group's layers depend on that group's
  packages alone, so the parent's image and the child's image carry identical layers for
  the parent's packages.
- Within a group, a package holding at least 1/24 of the group's bytes gets a layer of its
  own (at most 12 such); every other package goes to one of 16 buckets chosen by a hash of
  its name. A package never moves bucket when it is bumped, and adding or removing a
  package only touches its own bucket.
- Deep chains keep at most 3 groups (the root-most ones merge), so an environment has at
  most 3 x (12 + 16) layers; real ones have 10-25 per group. Docker's limit is ~125.
- The locked PyPI wheels are a group of their own (``PYPI_GROUP``), above every conda
  group and laid out by the same rules: a PyPI bump re-pushes only that group's layers,
  and a conda bump none of them.

Layer files (``write_layer``). The same entries always give the same bytes, hence the same
layer digest: entries sorted by path, every parent directory listed, one fixed mtime, fixed
uid/gid and modes, no user or group names, no extended headers that carry times.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

DEDICATED_SHARE = 24  # a package with >= 1/24 of its group's bytes gets its own layer
MAX_DEDICATED = 12  # per group
BUCKETS = 16  # hash buckets per group for the other packages
MAX_GROUPS = 3
PYPI_GROUP = "pypi"  # not counted in MAX_GROUPS: the conda groups' layers stay as they were

# The project's SOURCE_DATE_EPOCH (2024-01-01T00:00:00Z) unless the caller's environment sets one.
DEFAULT_EPOCH = 1704067200


def source_date_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_EPOCH


@dataclass(frozen=True)
class LayerPlan:
    """One environment layer: a name for humans and the packages whose files it holds."""

    name: str
    group: str
    packages: tuple[str, ...]


def bucket_of(package: str) -> int:
    return int.from_bytes(hashlib.sha256(package.encode()).digest()[:8], "big") % BUCKETS


def plan(
    groups: list[tuple[str, Mapping[str, int]]], pypi: Mapping[str, int] | None = None
) -> list[LayerPlan]:
    """Layers for ``groups``: ``[(group name, {package: installed bytes})]``, root first,
    then the PyPI group for ``pypi`` (``{wheel name: installed bytes}``).

    Every package of every group lands in exactly one layer; empty groups give no layer."""
    groups = [(g, dict(pkgs)) for g, pkgs in groups]
    if len(groups) > MAX_GROUPS:
        merged: dict[str, int] = {}
        for _, pkgs in groups[: len(groups) - MAX_GROUPS + 1]:
            merged.update(pkgs)
        first = "+".join(g for g, _ in groups[: len(groups) - MAX_GROUPS + 1])
        groups = [(first, merged), *groups[len(groups) - MAX_GROUPS + 1 :]]
    layers: list[LayerPlan] = []
    seen: set[str] = set()
    for group, sizes in groups:
        sizes = {p: s for p, s in sizes.items() if p not in seen}
        seen |= set(sizes)
        layers += _group_layers(group, sizes)
    return layers + _group_layers(PYPI_GROUP, dict(pypi or {}))


def _group_layers(group: str, sizes: dict[str, int]) -> list[LayerPlan]:
    if not sizes:
        return []
    total = sum(sizes.values())
    big = sorted(
        (p for p, s in sizes.items() if s * DEDICATED_SHARE >= total and s > 0),
        key=lambda p: (-sizes[p], p),
    )[:MAX_DEDICATED]
    buckets: dict[int, list[str]] = {}
    for package in sorted(set(sizes) - set(big)):
        buckets.setdefault(bucket_of(package), []).append(package)
    layers = [
        LayerPlan(f"{group}/bucket-{index:02d}", group, tuple(buckets[index]))
        for index in sorted(buckets)
    ]
    return layers + [LayerPlan(f"{group}/{package}", group, (package,)) for package in sorted(big)]


# ---------------------------------------------------------------- writing layers


@dataclass(frozen=True)
class Entry:
    """A member of a layer. ``path`` is relative to the image root (no leading slash)."""

    path: str
    kind: str = "file"  # file | dir | symlink
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    source: Path | None = None  # the file's content on disk ...
    data: bytes | None = None  # ... or inline
    target: str = ""  # symlink target, as stored


@dataclass(frozen=True)
class LayerFile:
    path: Path
    diff_id: str  # "sha256:<hex>" of the uncompressed tar: the layer's identity in an image
    size: int


def _key(path: str) -> tuple[str, ...]:
    return PurePosixPath(path).parts


class HashingWriter:
    """A write-only file that hashes and counts what goes through (a layer's diff_id)."""

    def __init__(self, fh):
        self.fh = fh
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def tell(self):
        return self.size

    def flush(self):
        self.fh.flush()


def write_layer(
    out: str | os.PathLike, entries: Iterable[Entry], mtime: int | None = None
) -> LayerFile:
    """Write ``entries`` as an uncompressed layer tar at ``out``; the same entries give the
    same bytes. A path listed twice is an error (each file belongs to one layer entry)."""
    mtime = source_date_epoch() if mtime is None else mtime
    by_path: dict[str, Entry] = {}
    for entry in entries:
        path = PurePosixPath(entry.path)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise ValueError(f"layer entry {entry.path!r} must be a relative path inside the image")
        key = str(path)
        if key in by_path and by_path[key] != entry:
            raise ValueError(f"layer entry {key!r} is listed twice with different content")
        by_path[key] = entry
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "wb") as raw:
            sink = HashingWriter(raw)
            # USTAR when names fit, else PAX with only a "path"/"linkpath" record (no times)
            with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for key in sorted(by_path, key=_key):
                    _add(tar, key, by_path[key], mtime)
            size = sink.size
            digest = sink.hash.hexdigest()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half layer behind
        raise
    return LayerFile(out, f"sha256:{digest}", size)


def _add(tar: tarfile.TarFile, path: str, entry: Entry, mtime: int) -> None:
    info = tarfile.TarInfo(path)
    info.mtime = mtime
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mode = entry.mode & 0o7777
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
        info.mode = 0o777
        tar.addfile(info)
    elif entry.kind == "file":
        info.type = tarfile.REGTYPE
        if entry.data is not None:
            import io

            info.size = len(entry.data)
            tar.addfile(info, io.BytesIO(entry.data))
        else:
            with open(entry.source, "rb") as fh:
                info.size = os.fstat(fh.fileno()).st_size
                tar.addfile(info, fh)
    else:
        raise ValueError(f"{path}: unknown entry kind {entry.kind!r}")


def parent_dirs(paths: Iterable[str], below: str, uid: int, gid: int) -> list[Entry]:
    """Directory entries for every ancestor of ``paths`` from ``below`` down (``below``
    included), so a layer sets its directories' owner and mode whatever order layers
    are applied in."""
    root = PurePosixPath(below)
    dirs: set[PurePosixPath] = set()
    for p in paths:
        for parent in PurePosixPath(p).parents:
            if parent == root or root in parent.parents:
                dirs.add(parent)
    return [Entry(str(d), "dir", 0o755, uid, gid) for d in sorted(dirs, key=lambda d: d.parts)]
