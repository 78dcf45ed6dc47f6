"""devtools/conda_channel.py: reproducible conda packages and channels; the bundled demo channel."""

from __future__ import annotations

import asyncio
import bz2
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import rattler
import yaml

from devtools.conda_channel import DEFAULT_EPOCH, build_package, index_channel

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "distributions" / "demo"
DEMO_CHANNEL = DEMO / "channel"

LIB_FILES = {
    "share/tiny-lib/data.txt": b"hello\n",
    "share/tiny-lib/nested/blob.bin": bytes(range(256)) * 4,
}
TOOL_SCRIPT = b"#!/bin/sh\necho tiny-tool\n"


def _members(archive: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(archive, "r:bz2") as tar:
        return tar.getmembers()


def _read(archive: Path, name: str) -> bytes:
    with tarfile.open(archive, "r:bz2") as tar:
        return tar.extractfile(name).read()


def _tiny_channel(root: Path) -> Path:
    build_package(
        root, "tiny-lib", "1.0.0", "h0_0", "noarch", LIB_FILES, license="MIT", summary="a lib"
    )
    build_package(root, "tiny-lib", "1.1.0", "h0_0", "noarch", LIB_FILES, license="MIT")
    for subdir in ("linux-64", "linux-aarch64"):
        build_package(
            root, "tiny-tool", "0.1.0", f"h{subdir[-2:]}_0", subdir,
            {"bin/tiny-tool": TOOL_SCRIPT, "etc/tiny-tool.conf": (b"x=1\n", 0o600)},
            depends=["tiny-lib >=1.0,<1.1"],
        )  # fmt: skip
    index_channel(root)
    return root


def _solve(channel: Path, specs: list[str], platform: str) -> list:
    source = rattler.Channel(channel.resolve().as_uri())
    return asyncio.run(rattler.solve([source], specs, platforms=[platform, "noarch"]))


# ---------------------------------------------------------------- packages


def test_same_inputs_give_byte_identical_packages(tmp_path):
    a = build_package(
        tmp_path / "a", "tiny-lib", "1.0.0", "h0_0", "noarch", LIB_FILES, license="MIT"
    )
    b = build_package(
        tmp_path / "b",
        "tiny-lib",
        "1.0.0",
        "h0_0",
        "noarch",
        dict(reversed(LIB_FILES.items())),
        license="MIT",
    )
    assert a.name == "tiny-lib-1.0.0-h0_0.tar.bz2"
    assert a.parent.name == "noarch"
    assert a.read_bytes() == b.read_bytes()
    c = build_package(
        tmp_path / "c", "tiny-lib", "1.0.0", "h0_0", "noarch", {**LIB_FILES, "x": b"1"}
    )
    assert c.read_bytes() != a.read_bytes()


def test_package_layout_and_metadata(tmp_path):
    path = build_package(
        tmp_path, "tiny-tool", "0.1.0", "h64_0", "linux-64",
        {"bin/tiny-tool": TOOL_SCRIPT, "etc/tiny-tool.conf": (b"x=1\n", 0o600)},
        depends=["tiny-lib"], license="BSD-3-Clause",
    )  # fmt: skip
    members = _members(path)
    names = [m.name for m in members]
    assert names == [
        "info/about.json", "info/files", "info/index.json", "info/paths.json",
        "bin/tiny-tool", "etc/tiny-tool.conf",
    ]  # fmt: skip
    for m in members:
        assert m.isfile()
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (DEFAULT_EPOCH, 0, 0, "", "")
    modes = {m.name: m.mode for m in members}
    assert modes["bin/tiny-tool"] == 0o755
    assert modes["etc/tiny-tool.conf"] == 0o600
    assert modes["info/index.json"] == 0o644

    index = json.loads(_read(path, "info/index.json"))
    assert index == {
        "name": "tiny-tool", "version": "0.1.0", "build": "h64_0", "build_number": 0,
        "subdir": "linux-64", "platform": "linux", "arch": "x86_64", "depends": ["tiny-lib"],
        "license": "BSD-3-Clause", "timestamp": DEFAULT_EPOCH * 1000,
    }  # fmt: skip
    paths = json.loads(_read(path, "info/paths.json"))
    assert paths["paths_version"] == 1
    assert paths["paths"][0] == {
        "_path": "bin/tiny-tool",
        "path_type": "hardlink",
        "sha256": hashlib.sha256(TOOL_SCRIPT).hexdigest(),
        "size_in_bytes": len(TOOL_SCRIPT),
    }
    assert _read(path, "info/files") == b"bin/tiny-tool\netc/tiny-tool.conf\n"
    assert json.loads(_read(path, "info/about.json")) == {"license": "BSD-3-Clause"}
    # rattler reads it as a real package
    record = asyncio.run(rattler.RepoDataRecord.from_package_archive(path))
    assert (record.name.normalized, str(record.version), str(record.build)) == (
        "tiny-tool",
        "0.1.0",
        "h64_0",
    )


def test_noarch_packages(tmp_path):
    path = build_package(tmp_path, "tiny-lib", "1.0.0", "h0_0", "noarch", LIB_FILES)
    index = json.loads(_read(path, "info/index.json"))
    assert index["noarch"] == "generic"
    assert "arch" not in index and "platform" not in index
    assert "info/about.json" not in [m.name for m in _members(path)]


@pytest.mark.parametrize(
    "files",
    [{"/etc/passwd": b""}, {"../escape": b""}, {"a/./b": b""}, {"info/index.json": b""}, {"": b""}],
)
def test_bad_paths_are_refused(tmp_path, files):
    with pytest.raises(ValueError):
        build_package(tmp_path, "bad", "1", "0", "noarch", files)


def test_noarch_only_in_noarch_subdir(tmp_path):
    with pytest.raises(ValueError, match="noarch"):
        build_package(tmp_path, "bad", "1", "0", "linux-64", {"a": b""}, noarch="generic")


# ---------------------------------------------------------------- channels


def test_index_is_deterministic_and_complete(tmp_path):
    one = _tiny_channel(tmp_path / "one")
    two = _tiny_channel(tmp_path / "two")
    for subdir in ("noarch", "linux-64", "linux-aarch64"):
        a = (one / subdir / "repodata.json").read_bytes()
        assert a == (two / subdir / "repodata.json").read_bytes()
        data = json.loads(a)
        assert data["info"]["subdir"] == subdir
        for record in data["packages"].values():
            assert "indexed_timestamp" not in record  # the indexer's wall clock
            assert record["timestamp"] == DEFAULT_EPOCH * 1000
    # reindexing the same folder gives the same bytes too
    before = (one / "noarch" / "repodata.json").read_bytes()
    index_channel(one)
    assert (one / "noarch" / "repodata.json").read_bytes() == before
    # only plain repodata.json: no .zst, no shards
    assert sorted(p.name for p in (one / "noarch").iterdir()) == [
        "repodata.json", "tiny-lib-1.0.0-h0_0.tar.bz2", "tiny-lib-1.1.0-h0_0.tar.bz2",
    ]  # fmt: skip
    lib = json.loads(before)["packages"]["tiny-lib-1.0.0-h0_0.tar.bz2"]
    archive = one / "noarch" / "tiny-lib-1.0.0-h0_0.tar.bz2"
    assert lib["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert lib["size"] == archive.stat().st_size


def test_empty_channel_has_every_subdir(tmp_path):
    written = index_channel(tmp_path / "empty")
    assert sorted(written) == ["linux-64", "linux-aarch64", "noarch"]
    for path in written.values():
        assert json.loads(path.read_text())["packages"] == {}


def test_reindex_forgets_removed_packages(tmp_path):
    root = _tiny_channel(tmp_path / "ch")
    (root / "noarch" / "tiny-lib-1.1.0-h0_0.tar.bz2").unlink()
    index_channel(root)
    assert list(json.loads((root / "noarch" / "repodata.json").read_text())["packages"]) == [
        "tiny-lib-1.0.0-h0_0.tar.bz2"
    ]


def test_solve_and_install_from_a_built_channel(tmp_path):
    root = _tiny_channel(tmp_path / "ch")
    for platform in ("linux-64", "linux-aarch64"):
        records = _solve(root, ["tiny-tool"], platform)
        found = {r.name.normalized: r for r in records}
        assert sorted(found) == ["tiny-lib", "tiny-tool"]
        assert str(found["tiny-lib"].version) == "1.0.0"  # tiny-tool caps it below 1.1
        assert found["tiny-tool"].subdir == platform
    assert str(_solve(root, ["tiny-lib"], "linux-64")[0].version) == "1.1.0"

    records = _solve(root, ["tiny-tool"], "linux-64")
    prefix = tmp_path / "env"
    asyncio.run(rattler.install(records, prefix, cache_dir=tmp_path / "cache", show_progress=False))
    expected = {**LIB_FILES, "bin/tiny-tool": TOOL_SCRIPT, "etc/tiny-tool.conf": b"x=1\n"}
    for rel, data in expected.items():
        installed = prefix / rel
        assert installed.read_bytes() == data
        assert (
            hashlib.sha256(installed.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
        )
    assert (prefix / "bin" / "tiny-tool").stat().st_mode & 0o777 == 0o755
    assert (
        subprocess.run([prefix / "bin" / "tiny-tool"], capture_output=True, text=True).stdout
        == "tiny-tool\n"
    )
    meta = json.loads((prefix / "conda-meta" / "tiny-tool-0.1.0-h64_0.json").read_text())
    assert meta["url"] == (root / "linux-64" / "tiny-tool-0.1.0-h64_0.tar.bz2").resolve().as_uri()
    assert sorted(meta["files"]) == ["bin/tiny-tool", "etc/tiny-tool.conf"]


# ---------------------------------------------------------------- the bundled demo channel


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_committed_demo_channel_is_what_the_script_builds(tmp_path):
    out = tmp_path / "channel"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build-demo-channel.py"), "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    committed, rebuilt = _files(DEMO_CHANNEL), _files(out)
    assert sorted(committed) == sorted(rebuilt), "run scripts/build-demo-channel.py and commit"
    stale = [name for name in committed if committed[name] != rebuilt[name]]
    assert not stale, f"stale demo channel files (run scripts/build-demo-channel.py): {stale}"


def test_demo_channel_is_small():
    assert sum(p.stat().st_size for p in DEMO_CHANNEL.rglob("*") if p.is_file()) < 2_000_000


@pytest.mark.parametrize(("platform", "machine"), [("linux-64", 0x3E), ("linux-aarch64", 0xB7)])
def test_demo_spec_solves_against_the_demo_channel(platform, machine):
    spec = yaml.safe_load((DEMO / "distribution.yml").read_text())
    assert spec["channels"] == ["scistacks-demo"]
    records = _solve(DEMO_CHANNEL, spec["dependencies"], platform)
    found = {r.name.normalized: r for r in records}
    assert {"demo-stack", "demo-data", "demo-tool", "demo-pylib"} <= set(found)
    assert str(found["demo-data"].version) == "1.0.0"  # the spec pins the older one
    assert found["demo-tool"].subdir == platform
    # the tool inside is an ELF program for that machine
    archive = DEMO_CHANNEL / platform / found["demo-tool"].file_name
    elf = _read(archive, "bin/demo-stats")
    assert elf[:4] == b"\x7fELF"
    assert int.from_bytes(elf[18:20], "little") == machine
    # the environment's bytes are spread over several packages
    sizes = {}
    for r in records:
        with tarfile.open(DEMO_CHANNEL / r.subdir / r.file_name, "r:bz2") as tar:
            paths = json.load(tar.extractfile("info/paths.json"))["paths"]
        sizes[r.name.normalized] = sum(p["size_in_bytes"] for p in paths)
    assert max(sizes.values()) <= 0.16 * sum(sizes.values()), sizes


def test_bz2_is_deterministic():
    """The reproducibility of the archives rests on this."""
    data = io.BytesIO(bytes(range(256)) * 100).getvalue()
    assert bz2.compress(data, 9) == bz2.compress(data, 9)
