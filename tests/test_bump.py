"""Bumps on real lockfiles: the real family locked at an older state of the conda-forge
snapshot, then bumped at a later one."""

from __future__ import annotations

import datetime as dt
import json
import runpy
import shutil
from pathlib import Path

import pytest
import rattler

from builder.bump import bump
from builder.lock import ChannelMap, lock
from builder.lock.condalock import read
from builder.project import Project
from builder.spec import Catalog

REPO = Path(__file__).resolve().parent.parent
FAMILY = ["base", "pangeo", "r-edu", "gpu-ml"]
OLD = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)  # the snapshot runs 2022-07 .. 2026-08
LATER = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def snapshot() -> Path:
    return runpy.run_path(str(REPO / "scripts" / "unpack-snapshot.py"))["unpack"]()


@pytest.fixture(scope="module")
def old_family(tmp_path_factory, snapshot) -> Path:
    """The real family's specs, locked as of OLD (solved once per module)."""
    root = tmp_path_factory.mktemp("old-family")
    for name in FAMILY:
        shutil.copytree(REPO / "distributions" / name, root / "distributions" / name)
    project = Project.at(root)
    lock(project, Catalog.load(project), FAMILY, cmap_for(root, snapshot), exclude_newer=OLD)
    return root


@pytest.fixture
def project(old_family, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(old_family, root)
    return root


def cmap_for(root: Path, snapshot: Path) -> ChannelMap:
    return ChannelMap.from_sources(root, [f"conda-forge={snapshot}"])


def run_bump(root: Path, snapshot: Path, name, packages=(), **kw):
    project = Project.at(root)
    return bump(
        project,
        Catalog.load(project),
        cmap_for(root, snapshot),
        name,
        list(packages),
        exclude_newer=LATER,
        **kw,
    )


def states(root: Path) -> dict[str, dict[str, dict[str, tuple[str, str, str]]]]:
    """distribution -> platform -> package -> (version, build, sha256), read from disk."""
    out = {}
    for name in FAMILY:
        locked = read(root / "lockfiles" / name / "conda-lock.yml")
        out[name] = {
            plat: {p.name: (p.version, p.build, p.sha256) for p in pkgs}
            for plat, pkgs in locked.packages.items()
        }
    return out


def records(root: Path, name: str) -> dict[str, dict[str, rattler.RepoDataRecord]]:
    env = rattler.LockFile.from_path(
        root / "lockfiles" / name / "conda-lock.yml"
    ).default_environment()
    return {
        p.name: {r.name.normalized: r for r in env.conda_repodata_records_for_platform(p)}
        for p in env.platforms()
    }


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / "lockfiles").rglob("*"))
        if p.is_file()
    }


def moved(before: dict, after: dict) -> set[str]:
    return {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}


def newest(snapshot: Path, package: str, until: dt.datetime) -> str:
    """The newest version of a noarch package in the snapshot up to a date, read from repodata."""
    data = json.loads((snapshot / "noarch" / "repodata.json").read_text())
    stamps = [
        r["version"]
        for group in ("packages", "packages.conda")
        for r in data.get(group, {}).values()
        if r["name"] == package and r["timestamp"] <= until.timestamp() * 1000
    ]
    return str(max(map(rattler.Version, stamps)))


def forced(old: dict, new: dict, seed: set[str]) -> set[str]:
    """The packages that cannot keep their old record once ``seed`` moved: an old record
    that requires a moved package in a version the new record is not, or an old record that
    a moved package's new record rejects. Everything else could have stayed."""
    out = set(seed)
    grew = True
    while grew:
        grew = False
        for name in sorted(old.keys() & new.keys() - out):
            stale_dependency = any(
                (spec := rattler.MatchSpec(dep)).name.normalized in out
                and spec.name.normalized in new
                and not spec.matches(new[spec.name.normalized])
                for dep in old[name].depends
            )
            rejected = any(
                (spec := rattler.MatchSpec(dep)).name.normalized == name
                and not spec.matches(old[name])
                for f in out
                if f in new
                for dep in new[f].depends
            )
            if stale_dependency or rejected:
                out.add(name)
                grew = True
    return out


def test_a_leaf_bump_moves_only_the_leaf(project, snapshot, run_cli):
    before, raw = states(project), files(project)
    target = newest(snapshot, "hvplot", LATER)
    assert before["pangeo"]["linux-64"]["hvplot"][0] != target  # there is something to bump to
    result = run_cli(
        "bump",
        "pangeo",
        "hvplot",
        "--channel-map",
        f"conda-forge={snapshot}",
        "--exclude-newer",
        LATER.date().isoformat(),
        root=project,
    )
    assert result.code == 0, result.stderr
    after = states(project)
    for name in FAMILY:
        for platform in before[name]:
            if "hvplot" in before[name][platform]:
                assert moved(before[name][platform], after[name][platform]) == {"hvplot"}, (
                    name,
                    platform,
                )
                assert after[name][platform]["hvplot"][0] == target
            else:
                assert after[name][platform] == before[name][platform]
    # base and r-edu hold no hvplot: their files are untouched, byte for byte
    for path, data in raw.items():
        if path.startswith(("lockfiles/base/", "lockfiles/r-edu/")):
            assert files(project)[path] == data, path
    old_version = before["pangeo"]["linux-64"]["hvplot"][0]
    assert f"| **hvplot** | {old_version} | {target} |" in result.stdout
    assert run_cli("lock", "--check", root=project).code == 0  # the specs did not change


def test_what_moves_with_a_bump_is_only_what_its_new_version_requires(project, snapshot):
    before = {n: records(project, n) for n in ("pangeo", "gpu-ml")}
    run_bump(project, snapshot, "pangeo", ["numpy"])
    after = {n: records(project, n) for n in ("pangeo", "gpu-ml")}
    for name in before:
        for platform, old in before[name].items():
            new = after[name][platform]
            assert rattler.Version(str(new["numpy"].version)) > rattler.Version(
                str(old["numpy"].version)
            )
            changed = {n for n in old.keys() & new.keys() if old[n].sha256 != new[n].sha256}
            assert changed <= forced(old, new, {"numpy"}), (name, platform, changed)
            assert old.keys() == new.keys()


def test_bumping_a_parent_relocks_its_children(project, snapshot):
    before = states(project)
    result = run_bump(project, snapshot, "base", ["jupyterlab >=4.5"])
    assert {r.name for r in result.results} == set(FAMILY)
    after = states(project)
    for platform, base in after["base"].items():
        assert rattler.Version(base["jupyterlab"][0]) >= rattler.Version("4.5")
        assert base != before["base"][platform]
        for child in ("pangeo", "r-edu", "gpu-ml"):
            if platform not in after[child]:
                continue
            mine = after[child][platform]
            missing = {n for n, rec in base.items() if mine.get(n) != rec}
            assert not missing, f"{child} on {platform} lacks base's {sorted(missing)[:5]}"
            # what the children add on top of base did not have to move, and did not
            theirs = {
                n: v
                for n, v in before[child][platform].items()
                if n not in before["base"][platform]
            }
            assert {n for n, v in theirs.items() if mine.get(n) != v} <= set(base)


def test_a_child_solved_apart_follows_its_parent(project, snapshot):
    spec = project / "distributions" / "r-edu" / "distribution.yml"
    spec.write_text(spec.read_text().replace("extends: base\n", "extends: base\nsolve_group: r\n"))
    catalog = Catalog.load(Project.at(project))
    lock(Project.at(project), catalog, ["r-edu"], cmap_for(project, snapshot), exclude_newer=OLD)
    before = {n: records(project, n) for n in ("base", "r-edu")}
    result = run_bump(project, snapshot, "base", ["jupyterlab >=4.5"])
    assert {r.name for r in result.results} == set(FAMILY)
    after = {n: records(project, n) for n in ("base", "r-edu")}
    for platform, old in before["r-edu"].items():
        base_new, new = after["base"][platform], after["r-edu"][platform]
        assert new["jupyterlab"].sha256 == base_new["jupyterlab"].sha256
        base_moved = {
            n
            for n in base_new
            if before["base"][platform].get(n) is None
            or before["base"][platform][n].sha256 != base_new[n].sha256
        }
        assert base_moved  # the bump did something
        changed = {n for n in old.keys() & new.keys() if old[n].sha256 != new[n].sha256}
        assert changed <= forced(old, new, base_moved), (platform, changed - base_moved)


def test_bump_all_is_a_full_refresh_and_name_all_keeps_the_parent(project, snapshot, tmp_path):
    fresh = tmp_path / "fresh"
    shutil.copytree(project, fresh)
    catalog = Catalog.load(Project.at(fresh))
    lock(Project.at(fresh), catalog, FAMILY, cmap_for(fresh, snapshot), exclude_newer=LATER)

    before = files(project)
    result = run_bump(project, snapshot, "pangeo", everything=True, dry_run=True)
    assert files(project) == before  # a dry run writes nothing
    status = {d.name: d.status for d in result.diffs}
    assert status["base"] == "unchanged" and status["pangeo"] == "changed"

    run_bump(project, snapshot, None, everything=True)
    assert files(project) == files(fresh)  # bump --all == lock from scratch at the same date


def one_line_error(result) -> str:
    assert result.code == 1, result.stdout
    lines = [ln for ln in result.err_lines if not ln.startswith("  solved")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hvplot >=99", ["hvplot >=99", "No candidates"]),  # no such version
        (
            "flox >=9",
            ["flox >=9", "'flox <1'", "distributions/pangeo/distribution.yml"],
        ),  # the spec forbids it
        (
            "python 3.13.*",
            ["python 3.13.*", "'python 3.12.*'", "distributions/base/distribution.yml"],
        ),
        ("nosuchpackage", ["nosuchpackage", "not in the lock of pangeo"]),
        ("xarray >=>", ["invalid match spec"]),
    ],
)
def test_an_impossible_bump_is_one_line_and_changes_nothing(
    project, snapshot, run_cli, spec, expected
):
    before = files(project)
    result = run_cli(
        "bump",
        "pangeo",
        spec,
        "--channel-map",
        f"conda-forge={snapshot}",
        "--exclude-newer",
        LATER.date().isoformat(),
        root=project,
    )
    line = one_line_error(result)
    for text in expected:
        assert text in line, line
    assert files(project) == before


def test_bump_needs_a_lock_and_packages(project, snapshot, run_cli):
    shutil.rmtree(project / "lockfiles" / "r-edu")
    assert "scistacks lock r-edu" in one_line_error(
        run_cli("bump", "r-edu", "r-base", root=project)
    )
    assert "--all" in one_line_error(run_cli("bump", "pangeo", root=project))
