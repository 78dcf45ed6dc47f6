"""The context stage: lockfiles/NAME/ + the spec -> images/NAME/PLATFORM/ (repo2docker folders).

Expected pins are read from the lockfile with rattler's own reader and the environment
file with ruamel (the parser repo2docker uses), never through the code under test.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import rattler
import yaml
from ruamel.yaml import YAML

from builder.context import write_contexts
from builder.errors import LockError
from builder.project import Project
from builder.spec import Catalog

REPO = Path(__file__).resolve().parents[1]
REAL = ["base", "pangeo", "r-edu", "gpu-ml"]
MANAGED = {"environment.yml", "requirements.txt", "apt.txt", "postBuild", "start", "README.md"}


def scistacks(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SCISTACKS_ROOT", "SCISTACKS_DEBUG")}
    return subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
    )


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def locked_pins(lockfile: Path, platform: str) -> list[str]:
    """``name=version=build`` of every conda record of ``platform``, via rattler."""
    env = rattler.LockFile.from_path(lockfile).default_environment()
    plat = next(p for p in env.platforms() if p.name == platform)
    records = env.conda_repodata_records_for_platform(plat) or []
    return sorted(f"{r.name.normalized}={r.version}={r.build}" for r in records)


def read_env(path: Path) -> dict:
    with path.open() as fh:
        return YAML(typ="safe").load(fh)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def project(tmp_path) -> Path:
    """The real distributions and their committed locks (no solving needed)."""
    for name in REAL:
        shutil.copytree(REPO / "distributions" / name, tmp_path / "distributions" / name)
        shutil.copytree(REPO / "lockfiles" / name, tmp_path / "lockfiles" / name)
    return tmp_path


def add_to_spec(root: Path, name: str, extra: dict) -> None:
    """apt/post_build/start are not lock inputs: adding them keeps the lock up to date."""
    path = root / "distributions" / name / "distribution.yml"
    spec = yaml.safe_load(path.read_text())
    spec.update(extra)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.fixture
def scripted(project) -> Path:
    """base and its child pangeo, each with apt packages, a postBuild and a start script."""
    for name in ("base", "pangeo"):
        folder = project / "distributions" / name
        (folder / "post-build.sh").write_text(f'#!/bin/bash\necho "{name} postBuild" >> "$OUT"\n')
        (folder / "start.sh").write_text(
            f'#!/usr/bin/env bash\nexport STARTED="${{STARTED:-}}{name},"\nexec "$@"\n'
        )
        add_to_spec(
            project,
            name,
            {"apt": [f"{name}-tool", "less"], "post_build": "post-build.sh", "start": "start.sh"},
        )
    return project


# ---------------------------------------------------------------- environment.yml


@pytest.mark.parametrize("name", REAL)
def test_environment_pins_every_locked_package_exactly_once(project, name):
    proc = scistacks(project, "context", name)
    assert proc.returncode == 0, proc.stderr
    lockfile = project / "lockfiles" / name / "conda-lock.yml"
    platforms = yaml.safe_load(lockfile.read_text())["metadata"]["platforms"]
    for platform in platforms:
        env = read_env(project / "images" / name / platform / "environment.yml")
        assert env["name"] == name
        assert env["channels"] == ["conda-forge"]
        deps = env["dependencies"]
        assert all(isinstance(d, str) for d in deps)  # no pip section: no spec asks for one
        # R packages are channel-qualified so repo2docker adds no RStudio/devtools
        r_packages = [d for d in deps if d.split("::")[-1].startswith("r-")]
        assert all(d.startswith("conda-forge::r-") for d in r_packages)
        assert bool(r_packages) == (name == "r-edu")
        unqualified = [d.removeprefix("conda-forge::") for d in deps]
        assert sorted(unqualified) == locked_pins(lockfile, platform)
        assert len(set(unqualified)) == len(unqualified)
        names = [d.split("=")[0] for d in unqualified]
        assert names == sorted(names)  # sorted by package name: diffs read well
    folders = sorted(p.name for p in (project / "images" / name).iterdir())
    assert folders == sorted(platforms)


def test_python_pin_is_plain_so_repo2docker_picks_the_matching_base_env(project):
    assert scistacks(project, "context", "r-edu").returncode == 0
    deps = read_env(project / "images/r-edu/linux-64/environment.yml")["dependencies"]
    python = [d for d in deps if d.split("=")[0] == "python"]
    assert len(python) == 1 and python[0].startswith("python=3.12.")
    assert "conda-forge::r-base=" in "\n".join(deps)


def wheels_for(locked, folder: Path):
    """``locked`` with two real wheels per platform, one requiring the other, by file URL."""
    import dataclasses

    from image.wheel_support import locked_wheel
    from pypi_index import make_wheel

    folder.mkdir(parents=True)
    helper = make_wheel(folder, "demo-pyhelp", "0.2")
    tool = make_wheel(folder, "demo-pytool", "1.0", requires=["demo-pyhelp >=0.1"])
    pypi = {p: [locked_wheel(tool, p), locked_wheel(helper, p)] for p in locked.platforms}
    return dataclasses.replace(locked, pypi=pypi)


def render_into(project: Path, name: str, locked, platform: str, folder: Path) -> Path:
    from builder.context import render

    dist = Catalog.load(Project.at(project)).get(name)
    for file_name, (text, mode) in render(Project.at(project), dist, locked, platform).items():
        (folder / file_name).parent.mkdir(parents=True, exist_ok=True)
        (folder / file_name).write_text(text)
        (folder / file_name).chmod(mode)
    return folder


def pip_section_install(context: Path, target: Path) -> subprocess.CompletedProcess:
    """What conda's and mamba's ``env update`` run for a pip section: its lines in a file
    beside environment.yml, ``pip install -U -r FILE`` from that folder (into ``target``,
    with no index: the wheels are file URLs)."""
    env = read_env(context / "environment.yml")
    lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    (context / "condaenv.requirements.txt").write_text("\n".join(lines) + "\n")
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "-U", "-r", "condaenv.requirements.txt",
         "--no-input", "--no-index", "--target", str(target)],
        cwd=context, capture_output=True, text=True,
    )  # fmt: skip


def test_locked_wheels_are_pinned_by_hash_and_installed_by_the_pip_section(project, tmp_path):
    from builder.lock import read_lock

    locked = wheels_for(read_lock(Project.at(project), "base"), tmp_path / "wheels")
    context = render_into(project, "base", locked, "linux-64", tmp_path / "ctx")
    deps = read_env(context / "environment.yml")["dependencies"]
    assert deps[-1] == {"pip": ["-r requirements.txt"]}
    assert sorted(d for d in deps[:-1]) == locked_pins(
        project / "lockfiles/base/conda-lock.yml", "linux-64"
    )
    lines = (context / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if not line.startswith("#")]
    assert pins == [
        f"{w.name} @ {w.url} --hash=sha256:{w.sha256}"
        for w in sorted(locked.pypi["linux-64"], key=lambda w: w.name)
    ]
    assert "lockfiles/base/conda-lock.yml (linux-64)" in lines[0]
    assert "`requirements.txt`: the 2 PyPI wheels" in (context / "README.md").read_text()

    # pip installs exactly the locked wheels
    proc = pip_section_install(context, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    installed = sorted(p.name for p in (tmp_path / "site").glob("*.dist-info"))
    assert installed == ["demo_pyhelp-0.2.dist-info", "demo_pytool-1.0.dist-info"]

    # and refuses a wheel that is not the locked one
    wheel = tmp_path / "wheels" / "demo_pyhelp-0.2-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    proc = pip_section_install(context, tmp_path / "site-tampered")
    assert proc.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in proc.stderr
    assert not list((tmp_path / "site-tampered").glob("demo_pyhelp*"))


def test_repo2docker_renders_the_pip_section_after_copying_the_context(project, tmp_path):
    from builder.image.repo2docker import render_dockerfile
    from builder.lock import read_lock

    locked = wheels_for(read_lock(Project.at(project), "base"), tmp_path / "wheels")
    context = render_into(project, "base", locked, "linux-aarch64", tmp_path / "ctx")
    dockerfile = render_dockerfile(context, "linux/arm64")
    update = '${MAMBA_EXE} env update -p ${NB_PYTHON_PREFIX} --file "environment.yml"'
    copy_all = "COPY --chown=1000:1000 src/ ${REPO_DIR}/\n"
    assert update in dockerfile and copy_all in dockerfile
    # requirements.txt is in the image before environment.yml (and its pip section) is read
    assert dockerfile.index(copy_all) < dockerfile.index(update)
    assert "src/environment.yml ${REPO_DIR}/environment.yml" not in dockerfile
    # without wheels, repo2docker installs the environment from environment.yml alone
    plain = render_into(project, "base", read_lock(Project.at(project), "base"), "linux-aarch64",
                        tmp_path / "plain")  # fmt: skip
    assert not (plain / "requirements.txt").exists()
    plain_file = render_dockerfile(plain, "linux/arm64")
    assert plain_file.index(update) < plain_file.index(copy_all)


# ---------------------------------------------------------------- apt.txt, postBuild, start


def test_apt_postbuild_start_only_where_the_spec_asks(project):
    assert scistacks(project, "context", "base").returncode == 0
    assert sorted(p.name for p in (project / "images/base/linux-64").iterdir()) == [
        "README.md",
        "environment.yml",
    ]


def test_scripts_of_the_chain_parent_first(scripted, tmp_path):
    proc = scistacks(scripted, "context", "pangeo", "--platform", "amd64")
    assert proc.returncode == 0, proc.stderr
    folder = scripted / "images/pangeo/linux-64"
    assert (folder / "apt.txt").read_text() == "base-tool\nless\npangeo-tool\n"
    for script in ("postBuild", "start"):
        mode = stat.S_IMODE((folder / script).stat().st_mode)
        assert mode == 0o755, oct(mode)
        assert (folder / script).read_text().startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in (folder / "postBuild").read_text().splitlines()[:3]
    assert (folder / "environment.yml").stat().st_mode & 0o111 == 0

    # run them as repo2docker would: postBuild once, start before a command
    out = tmp_path / "post-build.log"
    subprocess.run([str(folder / "postBuild")], check=True, env={**os.environ, "OUT": str(out)})
    assert out.read_text() == "base postBuild\npangeo postBuild\n"
    ran = subprocess.run(
        [str(folder / "start"), "sh", "-c", 'echo "$STARTED"; echo "args:$0 $1"', "a", "b"],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "STARTED"},
    )
    assert ran.stdout == "base,pangeo,\nargs:a b\n"


def test_a_script_that_is_not_shell_is_refused_and_nothing_is_written(scripted):
    (scripted / "distributions/pangeo/post-build.sh").write_text(
        "#!/usr/bin/env python3\nprint(1)\n"
    )
    line = one_line_error(scistacks(scripted, "context", "base", "pangeo"))
    assert "distributions/pangeo/distribution.yml: post_build:" in line
    assert "bash or sh" in line
    assert not (scripted / "images").exists()  # base renders fine, but is not written alone


def test_stale_files_are_removed(scripted):
    assert scistacks(scripted, "context", "pangeo").returncode == 0
    for name in ("base", "pangeo"):
        spec = scripted / "distributions" / name / "distribution.yml"
        data = yaml.safe_load(spec.read_text())
        del data["apt"], data["post_build"]
        spec.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = scistacks(scripted, "context", "pangeo")
    assert proc.returncode == 0, proc.stderr
    assert "images/pangeo/linux-64: updated" in proc.stdout
    for platform in ("linux-64", "linux-aarch64"):
        names = sorted(p.name for p in (scripted / "images/pangeo" / platform).iterdir())
        assert names == ["README.md", "environment.yml", "start"]


# ---------------------------------------------------------------- determinism and refusals


def test_second_run_changes_nothing(scripted):
    project = Project.at(scripted)
    first = write_contexts(project, Catalog.load(project), REAL)
    assert len(first) == 7 and all(r.changed for r in first)
    before = snapshot(scripted / "images")
    mtimes = {p: p.stat().st_mtime_ns for p in (scripted / "images").rglob("*") if p.is_file()}
    second = scistacks(scripted, "context", "--all")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count(": unchanged") == 7 and ": updated" not in second.stdout
    assert snapshot(scripted / "images") == before
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_stale_lock_is_refused_in_one_line_and_nothing_is_written(project):
    spec = project / "distributions/pangeo/distribution.yml"
    spec.write_text(spec.read_text().replace("  - pooch\n", "  - pooch\n  - tqdm\n"))
    line = one_line_error(scistacks(project, "context", "pangeo"))
    assert line.startswith("error: cannot write the build context of 'pangeo': ")
    assert "lockfiles/pangeo/conda-lock.yml: out of date" in line
    assert not (project / "images").exists()


def test_missing_lock_is_refused(project):
    shutil.rmtree(project / "lockfiles" / "r-edu")
    line = one_line_error(scistacks(project, "context", "r-edu"))
    assert "lockfiles/r-edu/conda-lock.yml: missing (run: scistacks lock r-edu)" in line
    with pytest.raises(LockError):
        from builder.context import write_context

        write_context(Project.at(project), Catalog.load(Project.at(project)), "r-edu", "linux-64")


def test_platform_spellings_and_unknown_platform(project):
    catalog = Catalog.load(Project.at(project))
    for spelling in ("linux/arm64", "arm64", "linux-aarch64"):
        results = write_contexts(Project.at(project), catalog, ["base"], [spelling])
        assert [(r.name, r.platform) for r in results] == [("base", "linux-aarch64")]
    assert not (project / "images/base/linux-64").exists()
    line = one_line_error(scistacks(project, "context", "base", "--platform", "linux/s390x"))
    assert "unknown platform 'linux/s390x'" in line
    proc = scistacks(project, "context", "gpu-ml", "--platform", "linux/arm64")
    assert proc.returncode == 0 and "gpu-ml: not locked for linux/arm64 (skipped)" in proc.stderr


def test_readme_names_the_lock_and_how_to_build(project):
    assert scistacks(project, "context", "gpu-ml").returncode == 0
    from builder.lock import read_lock

    locked = read_lock(Project.at(project), "gpu-ml")
    readme = (project / "images/gpu-ml/linux-64/README.md").read_text()
    assert "lockfiles/gpu-ml/conda-lock.yml" in readme
    assert f"lock hash (linux-64): `{locked.lock_hash('linux-64')}`" in readme
    assert f"input hash: `{locked.inputs_hash}`" in readme
    assert (
        "repo2docker --no-run --image-name gpu-ml:linux-64 --Repo2Docker.platform=linux/amd64 "
        "--user-id 1000 --user-name jovyan images/gpu-ml/linux-64" in readme
    )
    assert "CONDA_OVERRIDE_CUDA=12.0" in readme


# ---------------------------------------------------------------- the committed contexts


def test_committed_contexts_are_up_to_date_with_their_locks(tmp_path):
    """Regenerate every committed context in a copy of the repository: same bytes, modes
    and files, and a context for every image platform of every lock."""
    for folder in ("distributions", "lockfiles", "images"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    shutil.copy(REPO / "pyproject.toml", tmp_path)  # the PyPI index demo's lock was made from
    locked = sorted(p.parent.name for p in (REPO / "lockfiles").glob("*/conda-lock.yml"))
    assert set(REAL) <= set(locked)
    before = snapshot(tmp_path / "images")
    proc = scistacks(tmp_path, "context", *locked)
    assert proc.returncode == 0, proc.stderr
    after = snapshot(tmp_path / "images")
    assert sorted(after) == sorted(before), "contexts missing or extra: run scistacks context"
    stale = [path for path in before if before[path] != after[path]]
    assert stale == [], "stale contexts: run scistacks context"
    assert {Path(p).name for p in before} <= MANAGED
