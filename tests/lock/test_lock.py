"""The lock stage against real conda-forge metadata (the bundled snapshot)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import rattler
import yaml
from conda_lock.lockfile import parse_conda_lock_file

from builder.lock import condalock

REPO = Path(__file__).resolve().parents[2]
REAL = ["base", "pangeo", "r-edu", "gpu-ml"]


def scistacks(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("  solved")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def locked(root: Path, name: str):
    return condalock.read(root / "lockfiles" / name / "conda-lock.yml")


def test_committed_locks_are_up_to_date():
    proc = scistacks(REPO, "lock", "--check", *REAL)
    assert proc.returncode == 0, proc.stderr


def test_relock_is_byte_identical_to_committed(real_project, snapshot):
    before = {p: p.read_bytes() for p in (real_project / "lockfiles").rglob("*") if p.is_file()}
    proc = scistacks(real_project, "lock", "--all", "--channel-map", f"conda-forge={snapshot}")
    assert proc.returncode == 0, proc.stderr
    after = {p: p.read_bytes() for p in (real_project / "lockfiles").rglob("*") if p.is_file()}
    assert after.keys() == before.keys()
    changed = [str(p.relative_to(real_project)) for p in before if before[p] != after[p]]
    assert changed == []
    assert "unchanged" in proc.stdout


@pytest.mark.parametrize(
    ("child", "parent"),
    [("pangeo", "base"), ("r-edu", "base"), ("gpu-ml", "pangeo"), ("gpu-ml", "base")],
)
def test_child_lock_contains_parent_lock_at_identical_builds(child, parent):
    c, p = locked(REPO, child), locked(REPO, parent)
    common = set(c.platforms) & set(p.platforms)
    assert common
    for platform in common:
        mine = {(x.name, x.version, x.build, x.url, x.sha256) for x in c.packages[platform]}
        theirs = {(x.name, x.version, x.build, x.url, x.sha256) for x in p.packages[platform]}
        missing = sorted(theirs - mine)
        assert not missing, f"{child} lacks {parent}'s {missing[:5]} on {platform}"
        assert len(mine) > len(theirs)


def test_every_platform_and_only_canonical_urls():
    for name in REAL:
        lock = locked(REPO, name)
        spec = yaml.safe_load((REPO / "distributions" / name / "distribution.yml").read_text())
        assert list(lock.platforms) == spec.get("platforms", ["linux-64", "linux-aarch64"])
        for platform, pkgs in lock.packages.items():
            assert pkgs, (name, platform)
            for pkg in pkgs:
                assert pkg.url.startswith("https://conda.anaconda.org/conda-forge/"), pkg.url
                assert len(pkg.sha256) == 64 and len(pkg.md5) == 32
        text = (REPO / "lockfiles" / name / "conda-lock.yml").read_text()
        assert "file://" not in text


def test_gpu_ml_locks_cuda_builds_without_a_gpu():
    lock = locked(REPO, "gpu-ml")
    torch = lock.by_name("linux-64")["pytorch"]
    assert "cuda" in torch.build
    assert "cuda-version" in lock.by_name("linux-64")


def test_lockfiles_load_with_conda_lock_and_rattler():
    for name in REAL:
        path = REPO / "lockfiles" / name / "conda-lock.yml"
        ours = locked(REPO, name)
        theirs = parse_conda_lock_file(path)
        for platform in ours.platforms:
            assert {d.name for d in theirs.package if d.platform == platform} == {
                p.name for p in ours.packages[platform]
            }
        env = rattler.LockFile.from_path(path).default_environment()
        for plat in env.platforms():
            records = env.conda_repodata_records_for_platform(plat)
            assert {r.name.normalized for r in records} == {
                p.name for p in ours.packages[plat.name]
            }


def test_conda_lock_render_explicit_matches_our_explicit_files(tmp_path):
    lockfile = REPO / "lockfiles" / "pangeo" / "conda-lock.yml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conda_lock",
            "render",
            "-k",
            "explicit",
            "-p",
            "linux-aarch64",
            str(lockfile),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr

    def urls(text):
        return sorted(ln.split("#")[0] for ln in text.splitlines() if ln.startswith("https://"))

    rendered = urls((tmp_path / "conda-linux-aarch64.lock").read_text())
    ours = urls((REPO / "lockfiles" / "pangeo" / "conda-linux-aarch64.lock").read_text())
    assert rendered == ours and len(ours) > 300


def test_check_catches_a_changed_spec_and_its_children(real_project):
    spec = real_project / "distributions" / "base" / "distribution.yml"
    spec.write_text(spec.read_text().replace("  - nbgitpuller\n", "  - nbgitpuller >=1.2\n"))
    proc = scistacks(real_project, "lock", "--check")
    assert proc.returncode == 1
    stale = {ln.split(":")[1].strip() for ln in proc.stderr.splitlines() if ln.startswith("stale:")}
    assert stale == {"base", "pangeo", "r-edu", "gpu-ml"}


def test_check_names_a_corrupt_lockfile(real_project):
    (real_project / "lockfiles" / "r-edu" / "conda-lock.yml").write_text(
        "version: 1\npackage: [oops\n"
    )
    err = one_line_error(scistacks(real_project, "lock", "--check", "r-edu"))
    assert "lockfiles/r-edu/conda-lock.yml" in err


def test_unsolvable_pin_names_file_and_package(real_project, snapshot):
    spec = real_project / "distributions" / "r-edu" / "distribution.yml"
    spec.write_text(spec.read_text().replace("  - r-base >=4.3\n", "  - r-base >=9.1\n"))
    before = (real_project / "lockfiles" / "r-edu" / "conda-lock.yml").read_bytes()
    err = one_line_error(
        scistacks(real_project, "lock", "r-edu", "--channel-map", f"conda-forge={snapshot}")
    )
    assert "distributions/r-edu/distribution.yml" in err and "r-base" in err
    assert (real_project / "lockfiles" / "r-edu" / "conda-lock.yml").read_bytes() == before


def test_sibling_clash_names_both_then_solve_group_separates_them(real_project, snapshot):
    pangeo = real_project / "distributions" / "pangeo" / "distribution.yml"
    redu = real_project / "distributions" / "r-edu" / "distribution.yml"
    pangeo.write_text(pangeo.read_text().replace("  - numpy >=2\n", "  - numpy >=2.4\n"))
    redu.write_text(redu.read_text().replace("  - r-ggplot2\n", "  - r-ggplot2\n  - numpy <2.3\n"))
    err = one_line_error(
        scistacks(real_project, "lock", "--all", "--channel-map", f"conda-forge={snapshot}")
    )
    assert "pangeo" in err and "r-edu" in err and "solve_group" in err
    redu.write_text(redu.read_text().replace("extends: base\n", "extends: base\nsolve_group: r\n"))
    proc = scistacks(real_project, "lock", "--all", "--channel-map", f"conda-forge={snapshot}")
    assert proc.returncode == 0, proc.stderr
    r, b, pg = (
        locked(real_project, "r-edu"),
        locked(real_project, "base"),
        locked(real_project, "pangeo"),
    )
    for platform in b.platforms:
        base_records = {(p.name, p.build) for p in b.packages[platform]}
        # the family without r-edu is still consistent
        assert base_records <= {(p.name, p.build) for p in pg.packages[platform]}
        # r-edu solved apart, preferring base's records: most are shared
        shared = base_records & {(p.name, p.build) for p in r.packages[platform]}
        assert len(shared) >= 0.8 * len(base_records), (
            platform,
            sorted(base_records - shared)[:10],
        )
        assert rattler.Version(r.by_name(platform)["numpy"].version) < rattler.Version("2.3")


def test_channel_map_from_environment(real_project, snapshot):
    (real_project / "lockfiles" / "base" / "conda-lock.yml").unlink()
    proc = scistacks(
        real_project, "lock", "base", env={"SCISTACKS_CHANNEL_MAP": f"conda-forge={snapshot}"}
    )
    assert proc.returncode == 0, proc.stderr
    assert (real_project / "lockfiles" / "base" / "conda-lock.yml").read_bytes() == (
        REPO / "lockfiles" / "base" / "conda-lock.yml"
    ).read_bytes()


def test_unreachable_channel_is_one_line_naming_it(real_project):
    err = one_line_error(
        scistacks(
            real_project,
            "lock",
            "base",
            "--channel-map",
            "conda-forge=http://127.0.0.1:9/conda-forge",
        )
    )
    assert "127.0.0.1:9" in err


def test_bad_channel_map_entry(real_project):
    err = one_line_error(scistacks(real_project, "lock", "base", "--channel-map", "conda-forge"))
    assert "--channel-map" in err
