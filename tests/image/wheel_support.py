"""Tiny wheels for the tests, written as the wheel spec says (dist-info with METADATA,
WHEEL, entry_points.txt and a RECORD of every file's sha256), and lock entries for them.

(A module of its own: test modules cannot import a conftest.py by name.)
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from builder.lock.model import PypiPackage

# a fixed zip timestamp: the same inputs give the same wheel bytes
_DATE = (2024, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    files: dict[str, str],
    *,
    scripts: dict[str, str] | None = None,
    requires: tuple[str, ...] = (),
    tag: str = "py3-none-any",
    data: dict[str, str] | None = None,
) -> Path:
    """``folder/NAME-VERSION-TAG.whl`` holding ``files`` (path -> text), console
    ``scripts`` (name -> "module:function"), ``data`` files (``.data/data/...``)."""
    dist = name.replace("-", "_")
    dist_info = f"{dist}-{version}.dist-info"
    members: dict[str, bytes] = {path: text.encode() for path, text in files.items()}
    for path, text in (data or {}).items():
        members[f"{dist}-{version}.data/data/{path}"] = text.encode()
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    members[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    members[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: scistacks-tests\n"
        f"Root-Is-Purelib: {'true' if tag.endswith('-any') else 'false'}\nTag: {tag}\n"
    ).encode()
    if scripts:
        lines = "".join(f"{k} = {v}\n" for k, v in sorted(scripts.items()))
        members[f"{dist_info}/entry_points.txt"] = f"[console_scripts]\n{lines}".encode()
    record = [f"{path},{_record_hash(blob)},{len(blob)}" for path, blob in sorted(members.items())]
    members[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, blob in members.items():
            zf.writestr(zipfile.ZipInfo(member, _DATE), blob)
    return path


def locked_wheel(
    wheel: Path, platform: str, url: str | None = None, depends: tuple[str, ...] = ()
) -> PypiPackage:
    """The lock entry of ``wheel`` (its URL: ``url`` or the file itself)."""
    stem = wheel.name.removesuffix(".whl").split("-")
    return PypiPackage(
        name=stem[0].replace("_", "-").lower(),
        version=stem[1],
        platform=platform,
        url=url or wheel.resolve().as_uri(),
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        depends=depends,
    )
