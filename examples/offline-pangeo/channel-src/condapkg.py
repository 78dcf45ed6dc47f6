"""Deterministic re-packing, name/dependency fixes and indexing for build-channel.py."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from backports import zstd  # installed with whl2conda (conda-package-handling)

VERSION = 3  # bump when the fixes below change what a converted package holds
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

    def entry_key(self, wheel: Path, pypi_name: str) -> list:
        """What of conda-names.yml a converted package depends on (its cache key):
        the renames of its own name and its requirements, its depends entry."""
        names = {normalise(pypi_name)} | {normalise(r.name) for r in requirements(wheel)}
        renames = sorted((k, v) for k, v in self.rename.items() if k in names)
        return [renames, self.depends.get(self.conda_name(pypi_name))]

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

        fix.scripts = console_scripts(wheel)
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


def requirements(wheel: Path) -> list:
    """The wheel's Requires-Dist, parsed."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(z.read(meta).decode(errors="replace"))
    return [Requirement(line) for line in headers.get_all("Requires-Dist") or []]


def applicable_marker_deps(wheel: Path, platform: dict) -> list[str]:
    """Requires-Dist entries whose marker holds for CPython 3.11 on this platform.

    whl2conda drops every dependency with a marker; these are the ones to put back.
    """
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
    out = []
    for req in requirements(wheel):
        if req.marker is not None and req.marker.evaluate(env):
            out.append(f"{req.name} {conda_spec(req.specifier)}".strip())
    return out


PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"  # conda's text prefix placeholder
SCRIPT = f"""#!{PLACEHOLDER}/bin/python
import sys
from {{module}} import {{func}}
if __name__ == "__main__":
    sys.exit({{func}}())
"""


def console_scripts(wheel: Path) -> list[tuple[str, str, str]]:
    """(name, module, function) of the wheel's console_scripts entry points."""
    import configparser

    with zipfile.ZipFile(wheel) as z:
        eps = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        if not eps:
            return []
        cp = configparser.ConfigParser(delimiters=("=",))
        cp.optionxform = str
        cp.read_string(z.read(eps[0]).decode())
    items = cp.items("console_scripts") if cp.has_section("console_scripts") else []
    return [(k, *v.split("[")[0].strip().split(":", 1)) for k, v in items]


def add_scripts(scripts, info: list, content: list) -> None:
    """bin/ scripts for a platform package: whl2conda writes entry points only into
    noarch: python packages (link.json), and drops them for compiled ones."""
    import hashlib

    paths, files, idx_files = {"paths": []}, [], None
    for i, (m, data) in enumerate(info):
        if m.name not in ("info/paths.json", "info/files"):
            continue
        if m.name == "info/paths.json":
            paths = json.loads(data)
        else:
            files = data.decode().splitlines()
            idx_files = i
    for name, module, func in scripts:
        body = SCRIPT.format(module=module, func=func).encode()
        ti = tarfile.TarInfo(f"bin/{name}")
        ti.size, ti.mode = len(body), 0o755
        content.append((ti, body))
        files.append(ti.name)
        paths["paths"].append(
            {
                "_path": ti.name,
                "file_mode": "text",
                "path_type": "hardlink",
                "prefix_placeholder": PLACEHOLDER,
                "sha256": hashlib.sha256(body).hexdigest(),
                "size_in_bytes": len(body),
            }
        )
    for i, (m, _) in enumerate(info):
        data = None
        if m.name == "info/paths.json":
            data = json.dumps(paths, indent=2, sort_keys=True).encode()
        elif i == idx_files:
            data = ("\n".join(files) + "\n").encode()
        if data is not None:
            m.size = len(data)
            info[i] = (m, data)


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


def _tree_members(root: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """Files and symlinks under root (no directory entries, as conda packages)."""
    out = []
    for path in sorted(root.rglob("*")):
        ti = tarfile.TarInfo(path.relative_to(root).as_posix())
        if path.is_symlink():
            ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
            out.append((ti, None))
        elif path.is_file():
            data = path.read_bytes()
            ti.size, ti.mode = len(data), 0o755 if os.access(path, os.X_OK) else 0o644
            out.append((ti, data))
    return out


def repack(pkg: Path, out_dir: Path, epoch: int, fix=None) -> Path:
    """Rewrite a .conda, or a package tree (whl2conda --format tree), deterministically:
    fixed times and owners, sorted members, a fixed index.json timestamp, no local
    channel paths, optionally fixed metadata."""
    if pkg.is_dir():
        members = _tree_members(pkg)
        info = [md for md in members if md[0].name.startswith("info/")]
        content = [md for md in members if not md[0].name.startswith("info/")]
    else:
        with zipfile.ZipFile(pkg) as z:
            names = z.namelist()
            info = _read_tar(z.read(next(n for n in names if n.startswith("info-"))))
            content = _read_tar(z.read(next(n for n in names if n.startswith("pkg-"))))
    index = {}
    for i, (m, data) in enumerate(info):
        if m.name == "info/index.json":
            index = json.loads(data)
            index["timestamp"] = epoch * 1000
            if fix is not None:
                index = fix(index)
            data = json.dumps(index, indent=2, sort_keys=True).encode() + b"\n"
        elif m.name == "info/about.json":
            # rattler-build records the (local, empty) build channel's path
            about = json.loads(data)
            about["channels"] = [c for c in about.get("channels", []) if "file:" not in c]
            data = json.dumps(about, indent=2, sort_keys=True).encode() + b"\n"
        else:
            continue
        m.size = len(data)
        info[i] = (m, data)
    if getattr(fix, "scripts", None) and index.get("noarch") != "python":
        add_scripts(fix.scripts, info, content)
    stem = f"{index['name']}-{index['version']}-{index['build']}"
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{stem}.conda"
    parts = [
        ("metadata.json", json.dumps({"conda_pkg_format_version": 2}).encode()),
        (f"info-{stem}.tar.zst", _write_tar(info, epoch)),
        (f"pkg-{stem}.tar.zst", _write_tar(content, epoch)),
    ]
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as z:
        for name, data in parts:
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data)
    return dest


def index_json(pkg: Path) -> dict:
    with zipfile.ZipFile(pkg) as z:
        info_n = next(n for n in z.namelist() if n.startswith("info-"))
        for m, data in _read_tar(z.read(info_n)):
            if m.name == "info/index.json":
                return json.loads(data)
    raise ValueError(f"{pkg.name}: no info/index.json")


def unresolvable(indexes: list[dict], elsewhere=()) -> list[tuple[str, str]]:
    """(package, dependency) pairs whose dependency no package of the channel provides."""
    names = {i["name"] for i in indexes} | set(elsewhere)
    return [
        (i["name"], dep)
        for i in indexes
        for dep in i.get("depends", [])
        if dep.split()[0] not in names and not dep.startswith("__")
    ]


def index(channel: Path) -> None:
    import asyncio

    import rattler.index

    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False))
