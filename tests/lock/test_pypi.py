"""The PyPI step (builder/lock/pypi.py, pypi_metadata, pypi_conflicts): a real uv against
the test index on 127.0.0.1, on demo's conda lock."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.tags import Tag
from pypi_index import demo_spec, make_wheel, pypi_project

from builder.errors import LockError
from builder.lock import condalock, pypi, pypi_server
from builder.lock.model import LockedPackage
from builder.lock.pypi_index import PypiIndexMap
from builder.lock.pypi_metadata import Target, dependencies
from builder.project import Project
from builder.spec import Catalog

REPO = Path(__file__).resolve().parents[2]
DEMO = condalock.read(REPO / "lockfiles" / "demo" / "conda-lock.yml")


def resolve(root: Path, name: str = "d", platforms=("linux-64",), **options):
    catalog = Catalog.load(Project.at(root))
    solves = [pypi.PypiSolve(catalog.get(name), p, DEMO.packages[p]) for p in platforms]
    index = PypiIndexMap.from_sources(root)
    return pypi.resolve_all(solves, pypi.PypiOptions(index, **options))


def test_target_is_the_platform_glibc_and_python():
    t = Target("linux-aarch64", "3.12.11", "2.36")
    assert t.uv_platform == "aarch64-manylinux_2_36"
    assert Target("linux-64", "3.11", "2.5").uv_platform == "x86_64-manylinux_2_17"
    assert Target("osx-arm64", "3.12").uv_platform == "aarch64-apple-darwin"
    assert t.markers()["platform_machine"] == "aarch64"
    assert t.markers()["python_full_version"] == "3.12.11"
    assert Target("linux-64", "3.11").markers()["python_full_version"] == "3.11.0"
    with pytest.raises(LockError, match="cannot target linux-ppc64le"):
        Target("linux-ppc64le", "3.12")


def test_tags_rank_as_pip_does():
    rank = Target("linux-64", "3.11", "2.28").tag_priority()
    assert rank[Tag("cp311", "cp311", "manylinux_2_28_x86_64")] == 0
    assert (
        rank[Tag("cp311", "cp311", "manylinux_2_17_x86_64")]
        < rank[Tag("cp311", "abi3", "manylinux2014_x86_64")]
    )
    assert rank[Tag("cp311", "abi3", "manylinux2014_x86_64")] < rank[Tag("py3", "none", "any")]
    assert Tag("cp311", "cp311", "manylinux_2_31_x86_64") not in rank  # newer glibc
    assert Tag("cp312", "cp312", "manylinux_2_17_x86_64") not in rank


def test_target_python_is_conda_s_or_pip_python(tmp_path):
    root = pypi_project(
        tmp_path,
        {
            "both": {"channels": ["scistacks-demo"], "pip": ["tinyver"], "pip_python": "3.11"},
            "none": {"channels": ["scistacks-demo"], "pip": ["tinyver"]},
        },
    )
    catalog = Catalog.load(Project.at(root))
    url = "https://conda.anaconda.org/c/linux-64/python-3.12.11-h0.conda"
    python = LockedPackage("python", "3.12.11", "h0", "linux-64", url, "0" * 32, "")
    with pytest.raises(
        LockError, match=r"conda locks python 3\.12\.11 on linux-64; pip_python"
    ) as info:
        pypi.target(catalog.get("both"), "linux-64", [python])
    assert info.value.field == "pip_python"
    with pytest.raises(LockError, match="needs a Python to target") as info:
        pypi.target(catalog.get("none"), "linux-64", [])
    assert info.value.field == "pip"
    assert pypi.target(catalog.get("none"), "linux-64", [python]).python == "3.12.11"


def test_conda_packages_stand_in_as_metadata_only_wheels():
    name, data = pypi.stub_wheel("demo-pylib", "0.2.0")
    assert name == "demo_pylib-0.2.0-py3-none-any.whl"
    assert b"Name: demo-pylib\nVersion: 0.2.0" in pypi_server.core_metadata(data, name)
    assert pypi.stub_wheel("demo-pylib", "0.2.0")[1] == data  # no clock in it


def test_markers_and_extras_decide_the_dependencies(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    wheels = {
        "app": make_wheel(
            folder,
            "app",
            "1.0",
            [
                "lib[fast] >=1",
                "winonly; sys_platform == 'win32'",
                "old; python_version < '3.10'",
                "plot; extra == 'viz'",
            ],
        ),
        "lib": make_wheel(folder, "lib", "1.0", ["speedups; extra == 'fast'", "typing_extensions"]),
        "speedups": make_wheel(folder, "speedups", "1.0"),
        "plot": make_wheel(folder, "plot", "1.0"),
    }
    urls = {n: str(w) for n, w in wheels.items()}

    def read(url):
        return pypi_server.core_metadata(Path(url).read_bytes(), Path(url).name)

    known = {*urls, "winonly", "old", "typing-extensions"}
    target = Target("linux-64", "3.11")
    deps = dependencies(urls, [Requirement("app[viz]")], known, target, read)
    assert deps["app"] == {"lib": ">=1", "plot": "*"}
    assert deps["lib"] == {"speedups": "*", "typing-extensions": "*"}
    plain = dependencies(urls, [Requirement("app")], known, target, read)
    assert plain["app"] == {"lib": ">=1"}


def test_wheels_and_the_best_tag_per_platform(tmp_path):
    root = pypi_project(tmp_path, {"d": demo_spec(pip=["demo-pyutil", "fastthing"])})
    out = resolve(root, platforms=("linux-64", "linux-aarch64"))
    for platform, arch in (("linux-64", "x86_64"), ("linux-aarch64", "aarch64")):
        by_name = {w.name: w for w in out[("d", platform)]}
        assert sorted(by_name) == ["demo-pylib-extra", "demo-pyutil", "fastthing"]
        assert (
            by_name["fastthing"].file_name
            == f"fastthing-1.0.0-cp311-cp311-manylinux_2_17_{arch}.whl"
        )


def test_a_bump_prefers_the_locked_versions(tmp_path):
    root = pypi_project(tmp_path, {"d": demo_spec(pip=["needs-tinyver"])})
    fresh = resolve(root)[("d", "linux-64")]
    assert {w.name: w.version for w in fresh}["tinyver"] == "1.1.0"
    catalog = Catalog.load(Project.at(root))
    old = [pypi.PypiPackage("tinyver", "1.0.0", "linux-64", "https://x/tinyver.whl", "0" * 64)]
    solve = pypi.PypiSolve(catalog.get("d"), "linux-64", DEMO.packages["linux-64"], preferred=old)
    options = pypi.PypiOptions(PypiIndexMap.from_sources(root))
    kept = pypi.resolve_all([solve], options)[("d", "linux-64")]
    assert {w.name: w.version for w in kept}["tinyver"] == "1.0.0"
    solve.upgrade = ["tinyver"]
    moved = pypi.resolve_all([solve], options)[("d", "linux-64")]
    assert {w.name: w.version for w in moved}["tinyver"] == "1.1.0"


def test_allow_sdist_locks_the_sdist(tmp_path):
    root = pypi_project(tmp_path, {"d": demo_spec(pip=["only-sdist"])})
    with pytest.raises(LockError, match="only a source distribution"):
        resolve(root)
    (wheel,) = resolve(root, allow_sdist=True)[("d", "linux-64")]
    assert wheel.file_name == "only_sdist-1.0.0.tar.gz" and len(wheel.sha256) == 64


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("demo-pyutil", "demo-pyutil"),
        ("Demo_PyUtil=0.2", "demo-pyutil==0.2.*"),
        ("tinyver >=1.1", "tinyver>=1.1"),
        ("tinyver==1.1.0", "tinyver==1.1.0"),
        ("*", None),
    ],
)
def test_bump_specs_as_requirements(spec, expected):
    req = pypi.bump_requirement(spec)
    assert (str(req) if req else None) == expected


@pytest.mark.network
def test_a_small_requirement_against_the_real_pypi(tmp_path):
    """One real PyPI lock: uv against pypi.org, metadata from files.pythonhosted.org."""
    root = tmp_path / "real"
    (root / "distributions" / "d").mkdir(parents=True)
    (root / "distributions" / "d" / "distribution.yml").write_text(
        'name: d\nchannels: [scistacks-demo]\npip: ["idna ==3.10", "attrs <25.4"]\npip_python: "3.11"\n'
    )
    import datetime as dt

    catalog = Catalog.load(Project.at(root))
    solve = pypi.PypiSolve(catalog.get("d"), "linux-64", DEMO.packages["linux-64"])
    options = pypi.PypiOptions(
        PypiIndexMap(), exclude_newer=dt.datetime(2025, 6, 30, tzinfo=dt.UTC)
    )
    wheels = {w.name: w for w in pypi.resolve_all([solve], options)[("d", "linux-64")]}
    assert wheels["idna"].version == "3.10"
    assert wheels["idna"].url.startswith("https://files.pythonhosted.org/")
    assert (
        wheels["idna"].sha256 == "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3"
    )
    assert wheels["attrs"].file_name.endswith("-py3-none-any.whl")
