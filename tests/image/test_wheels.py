"""Locked PyPI wheels in the native engine: fetched by sha256, installed on the build host
with the PyPA installer as pip would, compiled in the image's step, in a layer group of
their own.

Expected files come from pip itself (``pip install --prefix``) and from the wheels' own
RECORD, never from the code under test.
"""

from __future__ import annotations

import base64
import compileall
import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from image.demo_support import scistacks
from image.wheel_support import locked_wheel
from pypi_index import make_wheel

from builder.errors import BuildError
from builder.image import layers, native, wheels
from builder.image.fetch import fetch_wheels
from builder.lock import ChannelMap, read_lock
from builder.lock.model import LockedDistribution, LockedPackage
from builder.lock.pypi_index import wheel_url
from builder.project import Project
from devtools.conda_channel import build_package, index_channel

ENV = "/srv/conda/envs/notebook"
SITE = "lib/python3.11/site-packages"
LOCK = "lockfiles/fixture/conda-lock.yml"


@pytest.fixture
def wheelhouse(tmp_path) -> dict[str, Path]:
    """A package with a console script, data and a dependency; the dependency; a
    platform wheel for aarch64."""
    out = tmp_path / "wheels"
    out.mkdir()
    return {
        "tool": make_wheel(
            out,
            "demo-pytool",
            "1.0",
            requires=["demo-pyhelp >=0.1"],
            scripts={"demo-pytool": "demo_pytool:main"},
            data={"share/demo-pytool/notes.txt": "notes\n"},
        ),
        "help": make_wheel(out, "demo-pyhelp", "0.2"),
        "arm": make_wheel(out, "demo-native", "2.0", tag="cp311-cp311-manylinux_2_17_aarch64"),
    }


def install(staging, wheelhouse, platform="linux-aarch64", names=("tool", "help"), conda=True):
    """``wheels.install`` of the named wheels of ``wheelhouse``, for Python 3.11."""
    return wheels.install(
        staging,
        [(locked_wheel(wheelhouse[n], platform), wheelhouse[n]) for n in names],
        platform=platform,
        python="3.11",
        conda_python=conda,
        lockfile=LOCK,
    )


def record_rows(staging: Path, dist_info: str) -> list[list[str]]:
    with open(staging / SITE / dist_info / "RECORD", newline="") as fh:
        return [row for row in csv.reader(fh) if row]


def test_installs_like_pip_with_the_images_python_in_scripts(wheelhouse, tmp_path):
    staging = tmp_path / "prefix"
    owned = install(staging, wheelhouse, "linux-aarch64")
    # pip, into a prefix of the same layout, is the reference for what lands where
    reference = tmp_path / "pip-prefix"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
         "--no-index", "--prefix", str(reference), wheelhouse["tool"], wheelhouse["help"]],
        check=True,
    )  # fmt: skip
    pip_only = {"REQUESTED", "direct_url.json"}  # what pip writes beyond RECORD/INSTALLER
    expected = sorted(
        str(p.relative_to(reference))
        for p in reference.rglob("*")
        if p.is_file() and p.name not in pip_only and "__pycache__" not in p.parts
    )
    got = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
    assert got == expected
    assert sorted(f for files in owned.values() for f in files) == got
    assert set(owned) == {"demo-pytool", "demo-pyhelp"}

    # the console script: naming the environment's python in the image, importing the
    # entry point pip's launcher imports (pip's own wording changes between pip versions)
    script = (staging / "bin" / "demo-pytool").read_text()
    pip_script = (reference / "bin" / "demo-pytool").read_text()
    assert script.splitlines()[0] == f"#!{ENV}/bin/python3.11"
    imports = [ln for ln in pip_script.splitlines() if ln.startswith("from ")]
    assert imports and all(ln in script.splitlines() for ln in imports)
    assert os.access(staging / "bin" / "demo-pytool", os.X_OK)
    run = subprocess.run(
        [sys.executable, staging / "bin" / "demo-pytool"],
        env={**os.environ, "PYTHONPATH": str(staging / SITE)},
        capture_output=True,
        text=True,
    )
    assert run.stdout == "1.0\n", run.stderr  # the wheel's main() prints its version

    # INSTALLER and a RECORD whose every hash is the installed file's
    dist_info = "demo_pytool-1.0.dist-info"
    assert (staging / SITE / dist_info / "INSTALLER").read_text() == "scistacks\n"
    for path, digest, size in record_rows(staging, dist_info):
        target = staging / SITE / path
        assert target.is_file(), path
        if digest:
            data = target.read_bytes()
            b64 = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={b64}", len(data)), path
        else:
            assert path == f"{dist_info}/RECORD"
    assert str(tmp_path) not in "".join(p.read_text() for p in staging.rglob("RECORD"))


def test_system_python_distribution_names_the_system_interpreter(wheelhouse, tmp_path):
    staging = tmp_path / "prefix"
    install(staging, wheelhouse, "linux-64", conda=False)
    assert (staging / "bin" / "demo-pytool").read_text().startswith("#!/usr/bin/python3.11\n")


def test_a_wheel_for_another_machine_is_refused(wheelhouse, tmp_path):
    with pytest.raises(BuildError) as err:
        install(tmp_path / "prefix", wheelhouse, "linux-64", names=("arm",))
    assert str(err.value) == (
        f"{LOCK}: pypi demo-native 2.0: demo_native-2.0-cp311-cp311-manylinux_2_17_aarch64.whl "
        "is not for x86_64"
    )
    # and it is the right one for aarch64
    install(tmp_path / "arm", wheelhouse, "linux-aarch64", names=("arm",))
    assert (tmp_path / "arm" / SITE / "demo_native" / "__init__.py").is_file()


def test_a_wheel_overwriting_a_conda_file_is_one_line(wheelhouse, tmp_path):
    staging = tmp_path / "prefix"
    (staging / SITE / "demo_pyhelp").mkdir(parents=True)
    (staging / SITE / "demo_pyhelp" / "__init__.py").write_text("# from a conda package\n")
    with pytest.raises(BuildError) as err:
        install(staging, wheelhouse, names=("help",))
    assert str(err.value) == (
        f"{LOCK}: pypi demo-pyhelp 0.2 (demo_pyhelp-0.2-py3-none-any.whl) would overwrite "
        f"{SITE}/demo_pyhelp/__init__.py, which the conda environment installs"
    )


def test_a_wheel_whose_record_lies_is_refused(wheelhouse, tmp_path):
    import zipfile

    bad = tmp_path / "bad" / wheelhouse["help"].name
    bad.parent.mkdir()
    with zipfile.ZipFile(wheelhouse["help"]) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            blob = src.read(info)
            dst.writestr(info, blob + b"# changed\n" if info.filename.endswith(".py") else blob)
    with pytest.raises(BuildError, match=r"pypi demo-pyhelp 0\.2 .*: cannot install: .*RECORD"):
        wheels.install(
            tmp_path / "prefix",
            [(locked_wheel(bad, "linux-64"), bad)],
            platform="linux-64",
            python="3.11",
            conda_python=True,
            lockfile=LOCK,
        )


def test_compiled_files_join_their_wheels_record(wheelhouse, tmp_path):
    staging = tmp_path / "prefix"
    install(staging, wheelhouse, "linux-64")
    (staging / SITE / "other.py").write_text("x = 1\n")  # no wheel's: stays unlisted
    compileall.compile_dir(staging / SITE, quiet=1, invalidation_mode=None)
    assert wheels.register_compiled(staging, "3.11") == 2
    tag = sys.implementation.cache_tag
    rows = {r[0]: r for r in record_rows(staging, "demo_pytool-1.0.dist-info")}
    pyc = f"demo_pytool/__pycache__/__init__.{tag}.pyc"
    assert rows[pyc] == [pyc, "", ""]
    owned = wheels.owners(staging, "3.11")
    assert f"{SITE}/demo_pyhelp/__pycache__/__init__.{tag}.pyc" in owned["demo-pyhelp"]
    assert not any("other" in f for files in owned.values() for f in files)
    assert wheels.register_compiled(staging, "3.11") == 0  # idempotent


def test_target_python_is_the_locked_one():
    python = LockedPackage(
        "python", "3.12.7", "h1_0", "linux-64", "https://x/python.conda", "", "a"
    )
    with_conda = LockedDistribution("d", ("linux-64",), (), {"linux-64": [python]}, "")
    assert wheels.target_python(with_conda, "linux-64", None, LOCK) == ("3.12", True)
    system = LockedDistribution("d", ("linux-64",), (), {"linux-64": []}, "")
    assert wheels.target_python(system, "linux-64", "3.11", LOCK) == ("3.11", False)
    with pytest.raises(BuildError) as err:
        wheels.target_python(system, "linux-64", None, LOCK)
    assert str(err.value) == (
        f"{LOCK}: the linux-64 lock has PyPI wheels but neither a conda python nor pip_python"
    )


# ---------------------------------------------------------------- fetch


def test_fetch_verifies_and_caches(wheelhouse, tmp_path):
    cache = tmp_path / "cache"
    wheel = locked_wheel(wheelhouse["help"], "linux-64")
    got = fetch_wheels([wheel], cache, lambda url: url, lockfile=LOCK)
    assert got == {"demo-pyhelp": cache / "pypi" / wheelhouse["help"].name}
    assert got["demo-pyhelp"].read_bytes() == wheelhouse["help"].read_bytes()
    # a cached copy is used without reading the source again
    again = fetch_wheels([wheel], cache, lambda url: "file:///nonexistent/x.whl", lockfile=LOCK)
    assert again == got


def test_fetch_refuses_a_wheel_that_is_not_the_locked_one(wheelhouse, tmp_path):
    wheel = locked_wheel(wheelhouse["help"], "linux-64")
    wheelhouse["help"].write_bytes(wheelhouse["help"].read_bytes() + b"tampered")
    with pytest.raises(BuildError) as err:
        fetch_wheels([wheel], tmp_path / "cache", lambda url: url, lockfile=LOCK)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{LOCK}: pypi demo-pyhelp 0.2: hash mismatch for file://")
    assert message.endswith("(the wheel is not the one that was locked)")
    assert list((tmp_path / "cache").rglob("*.whl")) == []


# ---------------------------------------------------------------- native.install and layers


INDEX = "https://pypi.fixture.invalid/simple"


@pytest.fixture
def pypi_project(tmp_path, wheelhouse) -> Path:
    """A locked conda fixture (one noarch package) with a mapped PyPI index folder."""
    channel = tmp_path / "channel"
    build_package(channel, "fixture-data", "1.0", "0", "noarch", {"share/fixture/data.txt": "hi"})
    index_channel(channel)
    (tmp_path / "distributions" / "fixture").mkdir(parents=True)
    (tmp_path / "distributions" / "fixture" / "distribution.yml").write_text(
        "name: fixture\nchannels: [scistacks-fixture]\nplatforms: [linux-aarch64]\n"
        "dependencies: [fixture-data]\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.scistacks.channel-map]\nscistacks-fixture = "channel"\n'
        f'[tool.scistacks.pypi-index-map]\n"{INDEX}" = "wheels"\n'
    )
    proc = scistacks(tmp_path, "lock", "fixture")
    assert proc.returncode == 0, proc.stderr
    return tmp_path


def with_wheels(project: Project, wheelhouse, names=("tool", "help")):
    """The fixture's lock with PyPI entries under the canonical index (install them with
    ``pip_python="3.11"``: the fixture has no conda python)."""
    locked = read_lock(project, "fixture")
    locked.pypi = {
        "linux-aarch64": [
            locked_wheel(wheelhouse[n], "linux-aarch64", wheel_url(INDEX, wheelhouse[n].name))
            for n in names
        ]
    }
    return locked


def test_install_reads_a_mapped_index_from_its_folder(pypi_project, wheelhouse):
    project = Project.at(pypi_project)
    staging = pypi_project / "stage"
    native.install(
        project,
        with_wheels(project, wheelhouse),
        "linux-aarch64",
        staging,
        ChannelMap.from_sources(pypi_project),
        pip_python="3.11",
    )
    assert (staging / "share" / "fixture" / "data.txt").read_text() == "hi"
    assert (staging / SITE / "demo_pytool" / "__init__.py").is_file()
    assert (staging / "bin" / "demo-pytool").read_text().startswith("#!/usr/bin/python3.11\n")
    cached = sorted(p.name for p in (pypi_project / "build" / "cache" / "pkgs" / "pypi").iterdir())
    assert cached == sorted(wheelhouse[n].name for n in ("tool", "help"))


def test_install_stages_nothing_when_a_wheel_does_not_match(pypi_project, wheelhouse):
    project = Project.at(pypi_project)
    locked = with_wheels(project, wheelhouse)
    wheelhouse["tool"].write_bytes(b"not the locked wheel")
    with pytest.raises(BuildError) as err:
        native.install(
            project,
            locked,
            "linux-aarch64",
            pypi_project / "stage",
            ChannelMap.from_sources(pypi_project),
            pip_python="3.11",
        )
    message = str(err.value)
    assert message.startswith(f"{LOCK}: pypi demo-pytool 1.0: hash mismatch for file://")
    assert "\n" not in message
    assert not (pypi_project / "stage").exists()


def test_a_pypi_bump_changes_only_the_pypi_layers(pypi_project, wheelhouse, tmp_path):
    project = Project.at(pypi_project)
    cmap = ChannelMap.from_sources(pypi_project)

    def layer_files(tag: str) -> dict[str, str]:
        locked = with_wheels(project, wheelhouse)
        staging = tmp_path / f"stage-{tag}"
        native.install(project, locked, "linux-aarch64", staging, cmap, pip_python="3.11")
        groups = native.package_groups(project, project_dist(), locked, "linux-aarch64")
        written, _ = native.write_env_layers(
            staging,
            groups,
            ("fixture",),
            tmp_path / f"layers-{tag}",
            wheels.owners(staging, "3.11"),
        )
        out = {}
        for plan, file in written:
            out[plan.name if plan else "meta"] = file.diff_id
            if plan and plan.group == layers.PYPI_GROUP:
                assert set(plan.packages) <= {"demo-pytool", "demo-pyhelp"}
        return out

    def project_dist():
        from builder.spec import Catalog

        return Catalog.load(project).get("fixture")

    before = layer_files("before")
    assert any(name.startswith("pypi/") for name in before)
    wheelhouse["help"] = make_wheel(wheelhouse["help"].parent, "demo-pyhelp", "0.3")  # a bump
    after = layer_files("after")
    assert sorted(before) == sorted(after)
    changed = {name for name in before if before[name] != after[name]}
    assert changed and all(name.startswith("pypi/") for name in changed), changed
    assert not (tmp_path / "layers-after" / "env-meta.tar").read_bytes().count(b"demo_py")
