"""builder.lock.condalock writes the text conda-lock's own models write, without them."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conda_lock.lockfile.v1.models import HashModel, LockMeta
from conda_lock.lockfile.v2prelim.models import LockedDependency, Lockfile
from conda_lock.models.channel import Channel

from builder.lock import condalock, yamlfast
from builder.lock.model import LockedDistribution

REPO = Path(__file__).resolve().parents[2]
COMMITTED = sorted((REPO / "lockfiles").glob("*/conda-lock.yml"))


def through_conda_lock(locked: LockedDistribution, sources: list[str]) -> str:
    """The lock as conda-lock's pydantic models dump it: the reference."""

    def entry(p, manager: str, **fields) -> LockedDependency:
        return LockedDependency(
            name=p.name,
            version=p.version,
            manager=manager,
            platform=p.platform,
            dependencies=condalock._dependencies(p.depends),
            url=p.url,
            categories={p.category},
            **fields,
        )

    package = [
        entry(p, "conda", hash=HashModel(md5=p.md5, sha256=p.sha256 or None), build=p.build)
        for plat in locked.platforms
        for p in locked.packages[plat]
    ] + [  # the PyPI wheels: conda-lock's manager: pip entries
        entry(w, "pip", hash=HashModel(sha256=w.sha256))
        for plat in locked.platforms
        for w in locked.pypi.get(plat, ())
    ]
    metadata = LockMeta(
        content_hash={plat: locked.inputs_hash for plat in locked.platforms},
        channels=[Channel.from_string(c) for c in locked.channels],
        platforms=list(locked.platforms),
        sources=sources,
        custom_metadata={condalock.META_PREFIX + k: v for k, v in sorted(locked.metadata.items())}
        or None,
    )
    lockfile = Lockfile(package=package, metadata=metadata)
    lockfile.alphasort_inplace()
    return yamlfast.dump(lockfile.to_v1().dict_for_output())


def sources_of(path: Path) -> list[str]:
    import yaml

    return yaml.safe_load(path.read_text())["metadata"]["sources"]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_lock_is_what_conda_lock_writes(path):
    locked = condalock.read(path)
    sources = sources_of(path)
    ours = condalock.render(locked, sources=sources, header="")
    assert ours == through_conda_lock(locked, sources)
    assert path.read_text().endswith(ours)  # and what is committed, after the header


def test_channels_metadata_and_missing_sha256_as_conda_lock_writes_them(monkeypatch):
    locked = condalock.read(REPO / "lockfiles" / "demo" / "conda-lock.yml")
    first = locked.platforms[0]
    packages = dict(locked.packages)
    packages[first] = [dataclasses.replace(packages[first][0], sha256=""), *packages[first][1:]]
    monkeypatch.setenv("SCISTACKS_TEST_TOKEN", "tk-123-456")
    odd = dataclasses.replace(
        locked,
        packages=packages,
        channels=(
            "conda-forge/label/main",
            "https://conda.example.org/mirror/conda-forge",
            "https://conda.example.org/t/tk-123-456/private",
        ),
        metadata={},
    )
    ours = condalock.render(odd, sources=["a.yml"], header="")
    assert ours == through_conda_lock(odd, ["a.yml"])
    assert "${SCISTACKS_TEST_TOKEN}" in ours and "custom_metadata" not in ours


def test_writing_a_lock_does_not_import_conda_lock():
    """conda-lock takes about a second to import: `scistacks lock` must not pay it."""
    script = """
import sys
from builder.lock import condalock
from builder.lock.model import LockedDistribution, LockedPackage
url = "https://conda.anaconda.org/conda-forge/noarch/tzdata-2025a-h0_0.conda"
package = LockedPackage("tzdata", "2025a", "h0_0", "linux-64", url, "0" * 32, "0" * 64, "noarch")
locked = LockedDistribution("x", ("linux-64",), ("conda-forge",), {"linux-64": [package]}, "h")
assert "tzdata" in condalock.render(locked, sources=["a.yml"], header="")
print(sorted(m for m in sys.modules if m.split(".")[0] == "conda_lock"))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_whole_lock_imports_neither_conda_lock_nor_pydantic(tmp_path):
    """The lock command's start-up: conda-lock (~1 s) and pydantic with the schemas of
    its models (~0.1 s) are for readers of lockfiles and stage records, not for `lock`."""
    root = tmp_path / "demo"
    shutil.copytree(REPO / "distributions" / "demo", root / "distributions" / "demo")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    script = f"""
import sys
from builder.cli import app
sys.argv = ["scistacks", "--root", {str(root)!r}, "lock", "demo"]
code = app._run(None)
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"conda_lock", "pydantic"}})
print(code, heavy)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr
