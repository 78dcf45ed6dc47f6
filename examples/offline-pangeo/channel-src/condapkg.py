"""Deterministic re-packing, name/dependency fixes and indexing for build-channel.py."""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from backports import zstd  # installed with whl2conda (conda-package-handling)

VERSION = 1  # bump when the fixes below change what a converted package holds
ZSTD_LEVEL = 12


def normalise(name: str) -> str:
    """PyPI's name normalisation (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


class Fixes:
    """The rules of conda-names.yml, applied to one converted wheel."""

    def __init__(self, names: dict):
        self.rename = {normalise(k): v for k, v in (names.get("rename") or {}).items()}
        self.depends = names.get("depends") or {}

    def conda_name(self, name: str) -> str:
        key = normalise(name)
        return self.rename.get(key, key)

    def entry_key(self, pypi_name: str) -> list:
        """What of conda-names.yml a converted package depends on (its cache key)."""
        return [sorted(self.rename.items()), self.depends.get(self.conda_name(pypi_name))]

    def for_wheel(self, wheel: Path, platform: dict):
        marker_deps = applicable_marker_deps(wheel, platform)

        def fix(index: dict) -> dict:
            name = self.conda_name(index["name"])
            deps = [self._dep(d) for d in index.get("depends", [])]
            have = {d.split()[0] for d in deps}
            deps += [d for d in map(self._dep, marker_deps) if d.split()[0] not in have]
            rule = self.depends.get(name) or {}
            drop = set(rule.get("drop") or [])
            deps = [d for d in deps if d.split()[0] not in drop] + list(rule.get("add") or [])
            return {**index, "name": name, "depends": deps}

        return fix

    def _dep(self, dep: str) -> str:
        name, _, rest = dep.strip().partition(" ")
        if name in ("python", "python_abi"):
            return dep.strip()
        return f"{self.conda_name(name)} {rest.strip()}".strip()


def conda_spec(spec) -> str:
    """A PEP 440 SpecifierSet as a conda version spec."""
    parts = []
    for s in sorted(spec, key=str):
        op, v = s.operator, s.version
        if op == "~=":
            head = v.split(".")[:-1]
            head[-1] = str(int(head[-1]) + 1)
            parts += [f">={v}", f"<{'.'.join(head)}"]
        elif op in ("==", "===") and v.endswith(".*"):
            parts.append(v)
        else:
            parts.append(("==" if op == "===" else op) + v)
    return ",".join(parts)


def applicable_marker_deps(wheel: Path, platform: dict) -> list[str]:
    """Requires-Dist entries whose marker holds for CPython 3.11 on this platform.

    whl2conda drops every dependency with a marker; these are the ones to put back.
    """
    from packaging.requirements import Requirement

    env = {
        "python_version": "3.11",
        "python_full_version": "3.11.2",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": platform["arch"],
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(z.read(meta).decode())
    out = []
    for line in headers.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is not None and req.marker.evaluate(env):
            out.append(f"{req.name} {conda_spec(req.specifier)}".strip())
    return out


def _read_tar(data: bytes) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(zstd.decompress(data))) as t:
        return [(m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]


def _write_tar(members, epoch: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for m, data in sorted(members, key=lambda md: md[0].name):
            m.mtime, m.uid, m.gid, m.uname, m.gname = epoch, 0, 0, "", ""
            m.pax_headers = {}
            t.addfile(m, io.BytesIO(data) if data is not None else None)
    return zstd.compress(buf.getvalue(), level=ZSTD_LEVEL)


def repack(pkg: Path, out_dir: Path, epoch: int, fix=None) -> Path:
    """Rewrite a .conda byte-for-byte deterministically: fixed times and owners,
    sorted members, a fixed index.json timestamp, optionally fixed metadata."""
    with zipfile.ZipFile(pkg) as z:
        names = z.namelist()
        info_n = next(n for n in names if n.startswith("info-"))
        pkg_n = next(n for n in names if n.startswith("pkg-"))
        info, content = _read_tar(z.read(info_n)), z.read(pkg_n)
    index = {}
    for i, (m, data) in enumerate(info):
        if m.name == "info/index.json":
            index = json.loads(data)
            index["timestamp"] = epoch * 1000
            if fix is not None:
                index = fix(index)
            data = json.dumps(index, indent=2, sort_keys=True).encode() + b"\n"
            m.size = len(data)
            info[i] = (m, data)
        elif m.name == "info/about.json":
            # rattler-build records the (local, empty) build channel's path
            about = json.loads(data)
            about["channels"] = [c for c in about.get("channels", []) if "file:" not in c]
            data = json.dumps(about, indent=2, sort_keys=True).encode() + b"\n"
            m.size = len(data)
            info[i] = (m, data)
    stem = f"{index['name']}-{index['version']}-{index['build']}"
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{stem}.conda"
    parts = [
        ("metadata.json", json.dumps({"conda_pkg_format_version": 2}).encode()),
        (f"info-{stem}.tar.zst", _write_tar(info, epoch)),
        (f"pkg-{stem}.tar.zst", _write_tar(_read_tar(content), epoch)),
    ]
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as z:
        for name, data in parts:
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data)
    return dest


def subdir_of(pkg: Path) -> str:
    with zipfile.ZipFile(pkg) as z:
        info_n = next(n for n in z.namelist() if n.startswith("info-"))
        for m, data in _read_tar(z.read(info_n)):
            if m.name == "info/index.json":
                return json.loads(data).get("subdir") or "noarch"
    return "noarch"


def index(channel: Path) -> None:
    import asyncio

    import rattler.index

    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False))
