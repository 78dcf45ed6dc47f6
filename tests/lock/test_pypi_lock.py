"""The lock stage with pip: requirements, through the real CLI, against a local index
(a mapped folder served on 127.0.0.1) and the bundled demo channel: the files written,
conda-lock's own reader and renderer, relocks, --check, children and bumps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conda_lock.lockfile import parse_conda_lock_file
from pypi_index import TEST_INDEX, demo_spec, make_wheel, pypi_project

from builder.lock import condalock
from builder.lock.render import PYPI_NOTE


def scistacks(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(root), *args],
        capture_output=True,
        text=True,
    )


def lock_ok(root: Path, *args: str) -> subprocess.CompletedProcess:
    proc = scistacks(root, "lock", *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in (root / "lockfiles").rglob("*")
        if p.is_file()
    }


@pytest.fixture
def project(tmp_path) -> Path:
    return pypi_project(
        tmp_path,
        {"d": demo_spec(pip=["demo-pyutil", "fastthing; platform_machine == 'x86_64'"])},
    )


def test_lock_writes_pip_entries_explicit_notes_and_pip_files(project):
    proc = lock_ok(project, "d")
    assert "linux-64: 2 + 3 PyPI, linux-aarch64: 2 + 2 PyPI" in proc.stdout
    locked = condalock.read(project / "lockfiles/d/conda-lock.yml")
    names = {p: [w.name for w in ws] for p, ws in locked.pypi.items()}
    # demo-pylib is conda's: the PyPI step never installs it again
    assert names == {
        "linux-64": ["demo-pylib-extra", "demo-pyutil", "fastthing"],
        "linux-aarch64": ["demo-pylib-extra", "demo-pyutil"],
    }
    by_name = {w.name: w for w in locked.pypi["linux-64"]}
    assert by_name["demo-pylib-extra"].depends == ("demo-pylib <1,>=0.2",)
    assert by_name["fastthing"].file_name == "fastthing-1.0.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    for w in by_name.values():  # the canonical index, never the server's port
        assert w.url.startswith("https://pypi.scistacks-test.invalid/files/"), w.url
    assert locked.metadata["pypi_index"] == TEST_INDEX
    pip_file = (project / "lockfiles/d/pip-linux-64.txt").read_text()
    assert "pip install --no-deps --require-hashes -r pip-linux-64.txt" in pip_file
    assert (
        f"fastthing @ {by_name['fastthing'].url} --hash=sha256:{by_name['fastthing'].sha256}"
        in pip_file
    )
    explicit = (project / "lockfiles/d/conda-linux-64.lock").read_text().splitlines()
    assert explicit[3].startswith(PYPI_NOTE)
    packages_md = (project / "lockfiles/d/packages.md").read_text()
    assert "### PyPI (3 packages, from `pip-linux-64.txt`)" in packages_md
    assert "| demo-pyutil | 0.1.0 | demo_pyutil-0.1.0-py3-none-any.whl | direct |" in packages_md
    assert scistacks(project, "lock", "--check", "d").returncode == 0


def test_conda_lock_reads_and_renders_the_pip_section(project, tmp_path):
    lock_ok(project, "d")
    lockfile = project / "lockfiles/d/conda-lock.yml"
    parsed = parse_conda_lock_file(lockfile)
    pip = sorted((p.name, p.platform) for p in parsed.package if p.manager == "pip")
    assert ("demo-pyutil", "linux-aarch64") in pip and len(pip) == 5
    out = tmp_path / "rendered"
    out.mkdir()
    for kind in ("env", "explicit"):
        proc = subprocess.run(
            [sys.executable, "-m", "conda_lock", "render", "--kind", kind, str(lockfile)],
            cwd=out,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    env = yaml.safe_load((out / "conda-linux-64.lock.yml").read_text())
    pinned = env["dependencies"][-1]["pip"]
    sha = {w.name: w.sha256 for w in condalock.read(lockfile).pypi["linux-64"]}
    assert f"demo-pyutil == 0.1.0 --hash=sha256:{sha['demo-pyutil']}" in pinned
    assert len(pinned) == 3
    for platform in ("linux-64", "linux-aarch64"):
        theirs = (out / f"conda-{platform}.lock").read_text().splitlines()
        ours = (project / f"lockfiles/d/conda-{platform}.lock").read_text().splitlines()
        # byte for byte conda-lock's, '# pip' lines in its order, but for our one note
        assert [ln for ln in ours if not ln.startswith(PYPI_NOTE)] == theirs


def test_relock_gives_the_same_bytes(project):
    lock_ok(project, "d", "--exclude-newer", "2025-06-30")
    before = files(project)
    assert condalock.read(project / "lockfiles/d/conda-lock.yml").metadata["exclude_newer"] == (
        "2025-06-30T00:00:00Z"
    )
    proc = lock_ok(project, "d", "--exclude-newer", "2025-06-30")
    assert "d: unchanged" in proc.stdout
    assert files(project) == before


def test_exclude_newer_applies_to_the_pypi_step(tmp_path):
    root = pypi_project(tmp_path, {"d": demo_spec(pip=["tinyver"])})
    make_wheel(root / "index", "tinyver", "1.2.0", stamp=(2025, 3, 1, 0, 0, 0))

    def tinyver(*args):
        lock_ok(root, "d", *args)
        return condalock.read(root / "lockfiles/d/conda-lock.yml").pypi["linux-64"][0].version

    assert tinyver() == "1.2.0"
    assert tinyver("--exclude-newer", "2025-01-01") == "1.1.0"
    # what the index held then: uv refuses a package with nothing that old
    proc = scistacks(root, "lock", "d", "--exclude-newer", "2023-06-30")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr


def test_check_catches_a_changed_pip_section_and_index(project):
    lock_ok(project, "d")
    spec = project / "distributions/d/distribution.yml"
    data = yaml.safe_load(spec.read_text())
    spec.write_text(yaml.safe_dump({**data, "pip": ["demo-pyutil"]}))
    proc = scistacks(project, "lock", "--check", "d")
    assert (
        proc.returncode == 1 and "out of date with distributions/d/distribution.yml" in proc.stderr
    )
    lock_ok(project, "d")
    assert not (project / "lockfiles/d/conda-linux-64.lock").read_text().count("fastthing")
    proc = scistacks(
        project, "lock", "--check", "d", "--pypi-index", "https://mirror.invalid/simple"
    )
    assert proc.returncode == 1
    assert f"locked from PyPI index {TEST_INDEX}, now https://mirror.invalid/simple" in proc.stderr


def test_damaged_pip_file_is_named(project):
    lock_ok(project, "d")
    pip_file = project / "lockfiles/d/pip-linux-aarch64.txt"
    pip_file.write_text(pip_file.read_text().replace("demo-pyutil @", "demo-pyutils @"))
    proc = scistacks(project, "lock", "--check", "d")
    assert proc.returncode == 1
    assert "lockfiles/d/pip-linux-aarch64.txt: disagrees with conda-lock.yml" in proc.stderr


def test_child_keeps_its_parents_wheels_and_narrows_its_requirements(tmp_path):
    root = pypi_project(
        tmp_path,
        {
            "parent": demo_spec(pip=["needs-tinyver"]),
            "child": {"extends": "parent", "pip": ["tinyver >=1.0,<2", "demo-pyutil"]},
        },
    )
    lock_ok(root, "--all")
    parent = condalock.read(root / "lockfiles/parent/conda-lock.yml")
    child = condalock.read(root / "lockfiles/child/conda-lock.yml")
    for platform in parent.platforms:
        theirs = {(w.name, w.version, w.sha256) for w in parent.pypi[platform]}
        mine = {(w.name, w.version, w.sha256) for w in child.pypi[platform]}
        assert theirs < mine
    md = (root / "lockfiles/child/packages.md").read_text()
    assert "| tinyver | 1.1.0 | tinyver-1.1.0-py3-none-any.whl | direct |" in md
    assert "| needs-tinyver | 1.0.0 | needs_tinyver-1.0.0-py3-none-any.whl | parent |" in md


def test_bump_moves_a_pypi_package_and_keeps_the_others(tmp_path):
    root = pypi_project(tmp_path, {"d": demo_spec(pip=["needs-tinyver", "demo-pyutil"])})
    newer = root / "index" / "tinyver-1.1.0-py3-none-any.whl"
    held = newer.rename(tmp_path / newer.name)
    lock_ok(root, "d")
    held.rename(newer)  # tinyver 1.1.0 is published
    proc = scistacks(root, "bump", "d", "demo-data")  # a conda bump: the wheels stay
    assert proc.returncode == 0, proc.stderr
    versions = {
        w.name: w.version
        for w in condalock.read(root / "lockfiles/d/conda-lock.yml").pypi["linux-64"]
    }
    assert versions["tinyver"] == "1.0.0"
    proc = scistacks(root, "bump", "d", "tinyver")
    assert proc.returncode == 0, proc.stderr
    assert "#### PyPI" in proc.stdout
    assert "| tinyver | 1.0.0 | 1.1.0 | minor upgrade |" in proc.stdout
    after = {
        w.name: w.version
        for w in condalock.read(root / "lockfiles/d/conda-lock.yml").pypi["linux-64"]
    }
    assert after == {**versions, "tinyver": "1.1.0"}
    # and back down, as a spec, through the diff of the working tree
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        check=True,
    )
    proc = scistacks(root, "bump", "d", "tinyver==1.0.0")
    assert proc.returncode == 0, proc.stderr
    proc = scistacks(root, "diff")
    assert "| tinyver | 1.1.0 | 1.0.0 | minor downgrade |" in proc.stdout


def test_bump_refuses_a_spec_the_pip_section_contradicts(tmp_path):
    root = pypi_project(tmp_path, {"d": demo_spec(pip=["tinyver <1.1"])})
    lock_ok(root, "d")
    proc = scistacks(root, "bump", "d", "tinyver>=1.1")
    assert proc.returncode != 0
    assert "distributions/d/distribution.yml asks for 'tinyver <1.1'" in proc.stderr


def test_new_from_a_binder_environment_pins_every_pypi_package(tmp_path, snapshot):
    """A binder environment.yml with a pip: section becomes a distribution (python added:
    the file names none) whose lock pins every PyPI package, on conda-forge's Python."""
    root = pypi_project(tmp_path, {})
    toml = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(
        toml.replace('scistacks-demo = "', f'conda-forge = "{snapshot}"\nx = "')
    )
    (root / "environment.yml").write_text(
        "channels: [conda-forge]\ndependencies:\n  - pip\n  - pip:\n      - needs-tinyver\n"
    )
    proc = scistacks(root, "new", "binder", "--from", str(root / "environment.yml"))
    assert proc.returncode == 0, proc.stderr
    spec = yaml.safe_load((root / "distributions/binder/distribution.yml").read_text())
    assert spec["dependencies"] == ["pip", "python"] and spec["pip"] == ["needs-tinyver"]
    lock_ok(root, "binder")
    locked = condalock.read(root / "lockfiles/binder/conda-lock.yml")
    python = locked.version_of("python", "linux-64")
    assert python and python.startswith("3.")
    for platform in locked.platforms:
        pins = {w.name: w.version for w in locked.pypi[platform]}
        assert pins == {"needs-tinyver": "1.0.0", "tinyver": "1.1.0"}, platform
