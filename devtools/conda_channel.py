"""Build real conda packages and index a conda channel, reproducibly: a development tool,
not shipped in the ``scistacks`` wheel.

Used to regenerate the bundled demo channel (``scripts/build-demo-channel.py``) and by
tests that need a channel with real package archives at run time.

Reproducibility: the same inputs give byte-identical files.
- A package is a ``.tar.bz2`` archive (conda's v1 format) whose members are sorted
  (``info/`` first, like conda-build), with a fixed mtime, uid/gid 0, no user or group
  names and fixed modes; bzip2 itself is deterministic.
- ``index.json`` carries a fixed ``timestamp`` unless one is given.
- ``repodata.json`` is written by :func:`index_channel` from the packages' own
  metadata, sorted, without the wall-clock fields an indexer may add.

Layout: ``CHANNEL/SUBDIR/NAME-VERSION-BUILD.tar.bz2`` and ``CHANNEL/SUBDIR/repodata.json``.
"""

from __future__ import annotations

import asyncio
import bz2
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from builder.image.layers import DEFAULT_EPOCH

DEFAULT_SUBDIRS = ("noarch", "linux-64", "linux-aarch64")

# conda subdir -> (platform, arch) as index.json spells them
_SUBDIR_PLATFORM = {
    "linux-64": ("linux", "x86_64"),
    "linux-aarch64": ("linux", "aarch64"),
    "linux-ppc64le": ("linux", "ppc64le"),
    "osx-64": ("osx", "x86_64"),
    "osx-arm64": ("osx", "arm64"),
    "win-64": ("win", "x86_64"),
}

FileContent = bytes | str | tuple[bytes | str, int]


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _as_file(content: FileContent, path: str) -> tuple[bytes, int]:
    if isinstance(content, tuple):
        data, mode = content
    else:
        data, mode = content, None
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, bytes):
        raise TypeError(f"{path}: file content must be bytes, str or (bytes, mode)")
    if mode is None:
        mode = 0o755 if path.startswith("bin/") else 0o644
    return data, mode & 0o7777


def _check_relpath(path: str) -> str:
    norm = path.replace("\\", "/")
    parts = norm.split("/")
    if not norm or norm.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{path!r}: package paths are relative, normalised, inside the prefix")
    if parts[0] == "info":
        raise ValueError(f"{path!r}: info/ is reserved for package metadata")
    return norm


def package_filename(name: str, version: str, build: str) -> str:
    return f"{name}-{version}-{build}.tar.bz2"


def index_record(
    name: str,
    version: str,
    build: str,
    subdir: str,
    *,
    build_number: int = 0,
    depends: Iterable[str] = (),
    constrains: Iterable[str] = (),
    noarch: str | None = None,
    license: str | None = None,
    timestamp: int | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict:
    """The ``info/index.json`` of a package."""
    if noarch is not None and subdir != "noarch":
        raise ValueError(f"{name}: a noarch package belongs to the noarch subdir, not {subdir!r}")
    if noarch is None and subdir == "noarch":
        noarch = "generic"
    if noarch not in (None, "generic", "python"):
        raise ValueError(f"{name}: noarch must be 'generic' or 'python', not {noarch!r}")
    if subdir != "noarch" and subdir not in _SUBDIR_PLATFORM:
        raise ValueError(f"{name}: unknown subdir {subdir!r}")
    platform, arch = _SUBDIR_PLATFORM.get(subdir, (None, None))
    record: dict = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": build_number,
        "subdir": subdir,
        "depends": list(depends),
        # milliseconds, as conda-build writes it
        "timestamp": (DEFAULT_EPOCH if timestamp is None else timestamp) * 1000,
    }
    if platform:
        record["platform"] = platform
        record["arch"] = arch
    if noarch:
        record["noarch"] = noarch
    if constrains:
        record["constrains"] = list(constrains)
    if license:
        record["license"] = license
    record.update(extra or {})
    return record


def _tarinfo(path: str, size: int, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.size = size
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def build_package(
    out_dir: str | os.PathLike,
    name: str,
    version: str,
    build: str,
    subdir: str,
    files: Mapping[str, FileContent],
    depends: Iterable[str] = (),
    noarch: str | None = None,
    license: str | None = None,
    *,
    build_number: int = 0,
    constrains: Iterable[str] = (),
    summary: str | None = None,
    home: str | None = None,
    description: str | None = None,
    timestamp: int | None = None,
    extra_index: Mapping[str, object] | None = None,
) -> Path:
    """Write ``out_dir/SUBDIR/NAME-VERSION-BUILD.tar.bz2`` and return its path.

    ``out_dir`` is the channel root. ``files`` maps a path relative to the environment
    prefix to its content: bytes or str (mode 0755 under ``bin/``, else 0644) or a
    ``(content, mode)`` pair. ``subdir="noarch"`` implies ``noarch="generic"``.
    ``info/about.json`` is written when a license, summary, home or description is given.
    """
    index = index_record(
        name,
        version,
        build,
        subdir,
        build_number=build_number,
        depends=depends,
        constrains=constrains,
        noarch=noarch,
        license=license,
        timestamp=timestamp,
        extra=extra_index,
    )
    payload: dict[str, tuple[bytes, int]] = {}
    for path, content in files.items():
        rel = _check_relpath(path)
        if rel in payload:
            raise ValueError(f"{name}: {rel!r} is listed twice")
        payload[rel] = _as_file(content, rel)
    ordered = sorted(payload)

    paths_json = {
        "paths": [
            {
                "_path": p,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(payload[p][0]).hexdigest(),
                "size_in_bytes": len(payload[p][0]),
            }
            for p in ordered
        ],
        "paths_version": 1,
    }
    info: dict[str, bytes] = {
        "info/files": "".join(f"{p}\n" for p in ordered).encode(),
        "info/index.json": _json_bytes(index),
        "info/paths.json": _json_bytes(paths_json),
    }
    about = {
        k: v
        for k, v in (
            ("license", license),
            ("summary", summary),
            ("home", home),
            ("description", description),
        )
        if v
    }
    if about:
        info["info/about.json"] = _json_bytes(about)

    mtime = DEFAULT_EPOCH if timestamp is None else timestamp
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(info):
            data = info[path]
            tar.addfile(_tarinfo(path, len(data), 0o644, mtime), io.BytesIO(data))
        for path in ordered:
            data, mode = payload[path]
            tar.addfile(_tarinfo(path, len(data), mode, mtime), io.BytesIO(data))

    target = Path(out_dir) / subdir / package_filename(name, version, build)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(bz2.compress(raw.getvalue(), 9))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


# Fields an indexer adds that depend on the wall clock (rattler 0.28 stamps every record
# with ``indexed_timestamp``, the time it read the archive).
_VOLATILE_RECORD_KEYS = frozenset({"indexed_timestamp"})
_VOLATILE_INFO_KEYS = frozenset({"created", "updated", "indexed_timestamp"})


def _normalise_repodata(data: dict, subdir: str) -> dict:
    """The indexer's repodata, minus wall-clock fields, with every map in sorted order."""
    out = dict(data)
    info = {k: v for k, v in (data.get("info") or {}).items() if k not in _VOLATILE_INFO_KEYS}
    info["subdir"] = subdir
    out["info"] = info
    for key in ("packages", "packages.conda"):
        records = data.get(key) or {}
        out[key] = {
            fn: {k: v for k, v in records[fn].items() if k not in _VOLATILE_RECORD_KEYS}
            for fn in sorted(records)
        }
    out.setdefault("repodata_version", 1)
    return out


def index_channel(
    channel_dir: str | os.PathLike,
    subdirs: Iterable[str] = DEFAULT_SUBDIRS,
) -> dict[str, Path]:
    """Index ``channel_dir`` with ``rattler.index.index_fs``; return ``{subdir: repodata.json}``.

    Every subdir of ``subdirs`` (and any subdir already holding packages) gets a
    ``repodata.json``, empty when it has no packages: a ``noarch/repodata.json`` always
    exists. Only plain ``repodata.json`` files are written (no ``.zst``, no shards), and
    they are rewritten sorted and without wall-clock fields, so the same packages always
    give the same bytes.
    """
    from rattler.index import index_fs

    root = Path(channel_dir)
    root.mkdir(parents=True, exist_ok=True)
    wanted = set(subdirs) | {"noarch"}
    wanted |= {p.parent.name for p in root.glob("*/*.tar.bz2")}
    wanted |= {p.parent.name for p in root.glob("*/*.conda")}
    for subdir in wanted:
        (root / subdir).mkdir(exist_ok=True)
        # index_fs skips packages it has already indexed unless forced; start clean so that
        # removed packages disappear and nothing depends on an earlier run.
        for leftover in ("repodata.json", "repodata.json.zst", "repodata_shards.msgpack.zst"):
            (root / subdir / leftover).unlink(missing_ok=True)
        shutil.rmtree(root / subdir / "shards", ignore_errors=True)

    _run(index_fs(root, write_zst=False, write_shards=False, force=True))

    written: dict[str, Path] = {}
    for subdir in sorted(wanted):
        path = root / subdir / "repodata.json"
        data = json.loads(path.read_text()) if path.is_file() else {}
        normalised = _normalise_repodata(data, subdir)
        blob = json.dumps(normalised, indent=2, sort_keys=True) + "\n"
        tmp = path.with_name(".repodata.json.tmp")
        tmp.write_text(blob)
        os.replace(tmp, path)
        written[subdir] = path
    return written


def _run(coro):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside an event loop (e.g. a notebook): run in a worker thread.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
