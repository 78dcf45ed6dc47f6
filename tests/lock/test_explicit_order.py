"""Explicit files (``conda-PLATFORM.lock``) in install order, exactly as conda-lock renders them.

conda and micromamba install an @EXPLICIT file in file order, so dependencies must come
before their dependants; conda-lock's ``render --kind explicit`` is the reference.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from builder.lock import condalock
from builder.lock.model import LockedPackage
from builder.lock.render import PYPI_NOTE, explicit, install_order

REPO = Path(__file__).resolve().parents[2]
LOCKS = sorted(p.parent.name for p in (REPO / "lockfiles").glob("*/conda-lock.yml"))


@pytest.mark.parametrize("name", LOCKS)
def test_committed_explicit_files_are_what_conda_lock_renders(name, tmp_path):
    lockfile = REPO / "lockfiles" / name / "conda-lock.yml"
    proc = subprocess.run(
        [sys.executable, "-m", "conda_lock", "render", "--kind", "explicit", str(lockfile)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    rendered = sorted(tmp_path.glob("conda-*.lock"))
    committed = sorted((REPO / "lockfiles" / name).glob("conda-*.lock"))
    assert [p.name for p in rendered] == [p.name for p in committed]
    for theirs, ours in zip(rendered, committed, strict=True):
        # ours adds one note where the lock has PyPI packages (pip-PLATFORM.txt)
        mine = [ln for ln in ours.read_text().splitlines() if not ln.startswith(PYPI_NOTE)]
        assert mine == theirs.read_text().splitlines(), ours


@pytest.mark.parametrize("name", LOCKS)
def test_every_dependency_comes_before_its_dependant(name):
    locked = condalock.read(REPO / "lockfiles" / name / "conda-lock.yml")
    for platform in locked.platforms:
        text = (REPO / "lockfiles" / name / f"conda-{platform}.lock").read_text()
        assert text == explicit(locked, platform)
        urls = [ln.split("#")[0] for ln in text.splitlines() if ln.startswith("https://")]
        position = {p.name: urls.index(p.url) for p in locked.packages[platform]}
        for p in locked.packages[platform]:
            for dep in p.depends:
                dep_name = dep.split()[0]
                if dep_name in position and not (p.name == "python" and dep_name == "pip"):
                    assert position[dep_name] < position[p.name], (platform, p.name, dep_name)


def pkg(name: str, *depends: str) -> LockedPackage:
    url = f"https://conda.anaconda.org/c/noarch/{name}-1-0.tar.bz2"
    return LockedPackage(name, "1", "0", "linux-64", url, "0" * 32, "", "noarch", depends)


def names(packages: list[LockedPackage]) -> list[str]:
    return [p.name for p in install_order(packages)]


def test_rounds_are_alphabetical_and_virtual_packages_are_met_first():
    packages = [pkg("zlib"), pkg("app", "lib >=1", "zlib"), pkg("lib", "__glibc >=2.17")]
    # lib waits one round for __glibc (as in conda-lock), so zlib goes first
    assert names(packages) == ["zlib", "lib", "app"]


def test_a_cycle_is_broken_and_python_goes_before_pip():
    packages = [pkg("pip", "python"), pkg("python", "pip"), pkg("a", "b"), pkg("b", "a", "c")]
    assert names(packages) == ["python", "pip", "a", "b"]


def test_same_order_as_conda_locks_toposort_on_random_graphs():
    import random

    from conda_lock.interfaces.vendored_conda import toposort

    rng = random.Random(14)
    for _ in range(300):
        pool = [f"p{i}" for i in range(rng.randint(1, 12))] + ["python", "pip", "__unix"]
        locked = rng.sample(pool[:-1], rng.randint(1, len(pool) - 1))
        graph = {n: set(rng.sample(pool, rng.randint(0, 3))) for n in locked}
        expected = [n for n in toposort(graph) if n in graph and not n.startswith("__")]
        assert names([pkg(n, *sorted(deps)) for n, deps in graph.items()]) == expected, graph
