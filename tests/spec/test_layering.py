"""Effective specs: ``extends`` chains merged (builder/spec/layering.py), the narrowing
rule (builder/spec/matchspec.py) and the Catalog (builder/spec/__init__.py)."""

from __future__ import annotations

import pytest

from builder.errors import SpecError
from builder.project import DEFAULT_PLATFORMS, Project
from builder.spec import Catalog
from builder.spec.matchspec import compatible, package_name

BASE = {
    "name": "base",
    "description": "the root",
    "channels": ["conda-forge"],
    "platforms": ["linux-64", "linux-aarch64"],
    "virtual_packages": {"__glibc": "2.28", "__linux": "5.15"},
    "dependencies": ["python 3.12.*", "numpy", "pandas >=2.2", "pip"],
    "pip": ["nbgitpuller"],
    "apt": ["git"],
    "notebooks": ["notebooks/kernel.ipynb"],
    "imports": ["numpy", "pandas"],
    "post_build": "postBuild",
    "base_image": "debian:bookworm",
    "hub": {"display_name": "Base", "cpu": {"limit": 2}},
}
BASE_FILES = {"distributions/base/postBuild": "#!/bin/sh\necho base\n"}


@pytest.fixture
def catalog_of(make_project):
    """``catalog_of({name: spec...}, files={...})`` -> a loaded Catalog (first error raised)."""

    def load(specs, files=None):
        root = make_project(specs, files)
        return Catalog.load(Project.at(root))

    return load


def family(**children):
    return {"base": BASE, **children}


# ---------------------------------------------------------------- a root on its own


def test_root_takes_its_own_spec(catalog_of):
    base = catalog_of(family(), BASE_FILES).get("base")
    assert base.parent is None
    assert base.chain == ("base",)
    assert base.spec_files == ("distributions/base/distribution.yml",)
    assert base.channels == ("conda-forge",)
    assert base.platforms == ("linux-64", "linux-aarch64")
    assert base.dependencies == ("python 3.12.*", "numpy", "pandas >=2.2", "pip")
    assert base.constraints == base.dependencies
    assert base.hub is not None and base.hub.display_name == "Base"


def test_root_without_platforms_gets_the_defaults(catalog_of):
    dist = catalog_of({"solo": {"name": "solo"}}).get("solo")
    assert dist.platforms == tuple(DEFAULT_PLATFORMS)


# ---------------------------------------------------------------- accumulation


def test_channels_accumulate_parent_first_without_repeats(catalog_of):
    child = {"name": "child", "extends": "base", "channels": ["bioconda", "conda-forge"]}
    dist = catalog_of(family(child=child), BASE_FILES).get("child")
    assert dist.channels == ("conda-forge", "bioconda")


def test_dependencies_accumulate_and_narrow_by_package_name(catalog_of):
    child = {
        "name": "child",
        "extends": "base",
        "dependencies": ["numpy >=2", "xarray >=2025.1", "Pandas 2.2.*"],
    }
    dist = catalog_of(family(child=child), BASE_FILES).get("child")
    # one spec per package, the child's (narrower) form, parent's order first
    assert dist.dependencies == (
        "python 3.12.*",
        "numpy >=2",
        "Pandas 2.2.*",
        "pip",
        "xarray >=2025.1",
    )
    assert dist.direct_names == ("python", "numpy", "pandas", "pip", "xarray")
    # the solver sees both specs of a narrowed package
    for spec in ("numpy", "numpy >=2", "pandas >=2.2", "Pandas 2.2.*", "python 3.12.*"):
        assert spec in dist.constraints
    assert dist.origins["numpy"] == "distributions/child/distribution.yml"
    assert dist.origins["python"] == "distributions/base/distribution.yml"
    # the parent is untouched
    base = catalog_of(family(child=child), BASE_FILES).get("base")
    assert "numpy" in base.dependencies and "numpy >=2" not in base.constraints


def test_constraints_keep_every_spec_of_a_long_chain(catalog_of):
    specs = family(
        mid={"name": "mid", "extends": "base", "dependencies": ["python >=3.12.1"]},
        leaf={"name": "leaf", "extends": "mid", "dependencies": ["python 3.12.4"]},
    )
    leaf = catalog_of(specs, BASE_FILES).get("leaf")
    assert [c for c in leaf.constraints if package_name(c) == "python"] == [
        "python 3.12.*",
        "python >=3.12.1",
        "python 3.12.4",
    ]
    assert "python 3.12.4" in leaf.dependencies
    assert leaf.chain == ("base", "mid", "leaf")
    assert leaf.spec_files == tuple(f"distributions/{n}/distribution.yml" for n in leaf.chain)


def test_pip_accumulates_by_normalised_name(catalog_of):
    child = {"name": "child", "extends": "base", "pip": ["NBGitPuller>=1.2", "typing_extensions"]}
    dist = catalog_of(family(child=child), BASE_FILES).get("child")
    assert dist.pip == ("NBGitPuller>=1.2", "typing_extensions")
    # both the parent's and the child's requirement go to the resolver
    assert dist.pip_constraints == ("nbgitpuller", "NBGitPuller>=1.2", "typing_extensions")
    assert dist.pip_origins["nbgitpuller"] == ("distributions/base/distribution.yml", "pip[0]")
    assert dist.pip_origins["NBGitPuller>=1.2"] == (
        "distributions/child/distribution.yml",
        "pip[0]",
    )


def test_pip_python_is_inherited_and_may_be_overridden(catalog_of):
    base = {**BASE, "dependencies": ["numpy"], "pip_python": "3.11"}
    mid = {"name": "mid", "extends": "base"}
    leaf = {"name": "leaf", "extends": "mid", "pip_python": "3.12"}
    catalog = catalog_of({"base": base, "mid": mid, "leaf": leaf}, BASE_FILES)
    assert catalog.get("mid").pip_python == "3.11"
    assert catalog.get("leaf").pip_python == "3.12"
    assert catalog.get("leaf").lock_inputs()["pip_python"] == "3.12"


@pytest.mark.parametrize(
    ("parent", "child", "ok"),
    [
        ("nbgitpuller >=1.2", "nbgitpuller >=1.2,<2", True),
        ("nbgitpuller ==1.2.*", "nbgitpuller ~=1.2.1", True),
        ("nbgitpuller <2", "nbgitpuller >=2", False),
        ("nbgitpuller ==1.2.1", "nbgitpuller !=1.2.1", False),
        ("nbgitpuller; python_version < '3.12'", "nbgitpuller >=9; python_version >= '3.12'", True),
    ],
)
def test_pip_narrowing_vs_contradiction(catalog_of, parent, child, ok):
    base = {**BASE, "pip": [parent]}
    leaf = {"name": "leaf", "extends": "base", "pip": ["attrs", child]}
    if ok:
        catalog_of({"base": base, "leaf": leaf}, BASE_FILES).get("leaf")
        return
    with pytest.raises(SpecError) as info:
        catalog_of({"base": base, "leaf": leaf}, BASE_FILES)
    assert info.value.file == "distributions/leaf/distribution.yml"
    assert info.value.field == "pip[1]"
    assert f"contradicts {parent!r} from distributions/base/distribution.yml" in info.value.message


def test_apt_imports_and_scripts_accumulate(catalog_of):
    child = {
        "name": "child",
        "extends": "base",
        "apt": ["git", "graphviz"],
        "imports": ["pandas", "xarray"],
        "post_build": "setup.sh",
        "start": "start",
    }
    files = {
        **BASE_FILES,
        "distributions/child/setup.sh": "#!/bin/sh\n",
        "distributions/child/start": "#!/bin/sh\n",
    }
    dist = catalog_of(family(child=child), files).get("child")
    assert dist.apt == ("git", "graphviz")
    assert dist.imports == ("numpy", "pandas", "xarray")
    assert dist.post_build == ("distributions/base/postBuild", "distributions/child/setup.sh")
    assert dist.start == ("distributions/child/start",)


def test_notebooks_accumulate_with_project_relative_paths(catalog_of):
    child = {
        "name": "child",
        "extends": "base",
        "notebooks": [
            {"path": "nb/fetch.ipynb", "network": True, "timeout": 60, "platforms": ["linux-64"]},
            "nb/plot.ipynb",
        ],
    }
    dist = catalog_of(family(child=child), BASE_FILES).get("child")
    paths = [nb.path for nb in dist.notebooks]
    assert paths == [
        "distributions/base/notebooks/kernel.ipynb",
        "distributions/child/nb/fetch.ipynb",
        "distributions/child/nb/plot.ipynb",
    ]
    owners = [nb.owner for nb in dist.notebooks]
    assert owners == ["base", "child", "child"]
    fetch = dist.notebooks[1]
    assert fetch.network is True and fetch.timeout == 60 and fetch.platforms == ("linux-64",)
    assert dist.notebooks[2].network is False and dist.notebooks[2].platforms is None


def test_same_notebook_name_in_two_folders_is_two_notebooks(catalog_of):
    child = {"name": "child", "extends": "base", "notebooks": ["notebooks/kernel.ipynb"]}
    dist = catalog_of(family(child=child), BASE_FILES).get("child")
    assert [nb.path for nb in dist.notebooks] == [
        "distributions/base/notebooks/kernel.ipynb",
        "distributions/child/notebooks/kernel.ipynb",
    ]


# ---------------------------------------------------------------- inherited, overridden, own


def test_platforms_are_inherited(catalog_of):
    dist = catalog_of(family(child={"name": "child", "extends": "base"}), BASE_FILES).get("child")
    assert dist.platforms == ("linux-64", "linux-aarch64")


def test_platforms_may_only_narrow(catalog_of):
    specs = family(
        child={"name": "child", "extends": "base", "platforms": ["linux-64"]},
        grandchild={"name": "grandchild", "extends": "child"},
    )
    catalog = catalog_of(specs, BASE_FILES)
    assert catalog.get("child").platforms == ("linux-64",)
    assert catalog.get("grandchild").platforms == ("linux-64",)


@pytest.mark.parametrize(
    "platforms", [["linux-64", "osx-arm64"], ["linux-ppc64le"], ["linux-aarch64", "win-64"]]
)
def test_platforms_never_widen(catalog_of, platforms):
    specs = family(child={"name": "child", "extends": "base", "platforms": platforms})
    with pytest.raises(SpecError) as info:
        catalog_of(specs, BASE_FILES)
    assert info.value.file == "distributions/child/distribution.yml"
    assert info.value.field == "platforms"
    assert "distributions/base/distribution.yml" in info.value.message


def test_a_grandchild_cannot_regain_a_dropped_platform(catalog_of):
    specs = family(
        child={"name": "child", "extends": "base", "platforms": ["linux-64"]},
        grandchild={
            "name": "grandchild",
            "extends": "child",
            "platforms": ["linux-64", "linux-aarch64"],
        },
    )
    with pytest.raises(SpecError) as info:
        catalog_of(specs, BASE_FILES)
    assert info.value.file == "distributions/grandchild/distribution.yml"
    assert "distributions/child/distribution.yml" in info.value.message


def test_virtual_packages_are_inherited_and_overridden(catalog_of):
    child = {
        "name": "child",
        "extends": "base",
        "virtual_packages": {"__glibc": "2.34", "__cuda": "12.0"},
    }
    catalog = catalog_of(family(child=child), BASE_FILES)
    assert catalog.get("child").virtual_packages == {
        "__glibc": "2.34",
        "__linux": "5.15",
        "__cuda": "12.0",
    }
    assert catalog.get("base").virtual_packages == {"__glibc": "2.28", "__linux": "5.15"}


def test_base_image_is_inherited_and_overridden(catalog_of):
    specs = family(
        plain={"name": "plain", "extends": "base"},
        cuda={"name": "cuda", "extends": "base", "base_image": "nvidia/cuda:12.4.1-base"},
    )
    catalog = catalog_of(specs, BASE_FILES)
    assert catalog.get("plain").base_image == "debian:bookworm"
    assert catalog.get("cuda").base_image == "nvidia/cuda:12.4.1-base"


def test_name_description_and_hub_are_not_inherited(catalog_of):
    specs = family(
        bare={"name": "bare", "extends": "base"},
        shown={"name": "shown", "extends": "base", "hub": {"display_name": "Shown", "gpu": 1}},
    )
    catalog = catalog_of(specs, BASE_FILES)
    bare = catalog.get("bare")
    assert bare.name == "bare"
    assert bare.description == ""
    assert bare.hub is None
    assert catalog.get("shown").hub.gpu == 1
    assert catalog.get("shown").hub.cpu is None  # hub settings are not merged either


def test_solve_groups(catalog_of):
    specs = {
        **family(
            pangeo={"name": "pangeo", "extends": "base"},
            ml={"name": "ml", "extends": "pangeo", "solve_group": "gpu"},
            r={"name": "r", "extends": "base"},
            other={"name": "other"},
        ),
        "ml-extra": {"name": "ml-extra", "extends": "ml"},
    }
    catalog = catalog_of(specs, BASE_FILES)
    assert catalog.get("ml").solve_group == "gpu"
    assert catalog.get("ml-extra").solve_group is None  # the field itself is not inherited
    assert catalog.solve_group("base") == "base"  # a family root names its family
    assert catalog.solve_group("pangeo") == "base"
    assert catalog.solve_group("r") == "base"
    assert catalog.solve_group("ml") == "gpu"
    assert catalog.solve_group("ml-extra") == "gpu"  # but the group is
    assert catalog.solve_group("other") == "other"
    assert catalog.group_members("base") == ["base", "pangeo", "r"]
    assert catalog.group_members("gpu") == ["ml", "ml-extra"]
    assert sorted(catalog.groups()) == ["base", "gpu", "other"]


# ---------------------------------------------------------------- lock inputs


def test_lock_inputs_hash_follows_what_the_solver_sees(catalog_of):
    def hash_of(**changes):
        return catalog_of({"base": {**BASE, **changes}}, BASE_FILES).get("base").lock_inputs_hash()

    reference = hash_of()
    assert hash_of() == reference
    # not solver inputs
    assert hash_of(description="other words") == reference
    assert hash_of(hub={"display_name": "Renamed"}) == reference
    assert hash_of(notebooks=[]) == reference
    assert hash_of(imports=[]) == reference
    assert hash_of(apt=["git", "vim"]) == reference
    # solver inputs
    assert hash_of(dependencies=["python 3.12.*", "numpy >=2", "pandas >=2.2", "pip"]) != reference
    assert hash_of(channels=["conda-forge", "bioconda"]) != reference
    assert hash_of(platforms=["linux-64"]) != reference
    assert hash_of(virtual_packages={"__glibc": "2.17"}) != reference
    assert hash_of(pip=["nbgitpuller>=1.2"]) != reference


# ---------------------------------------------------------------- narrowing vs contradiction

# (parent spec, child spec, may the child say this?) -- conda semantics, written by hand.
NARROWING = [
    # versions: a child may pick inside the parent's range
    ("python 3.12.*", "python 3.12.4", True),
    ("python 3.12.*", "python >=3.12.1", True),
    ("python 3.12.*", "python", True),
    ("python", "python 3.11.*", True),
    ("python >=3.10", "python 3.12.*", True),
    ("python 3.12.*|3.13.*", "python 3.13.*", True),
    ("python >3.12", "python 3.12.*", True),  # 3.12.1 is both
    ("python >=3.11", "python <3.12", True),
    ("xarray", "xarray >=2025.1", True),
    ("xarray >=2025.1", "xarray >=2025.3", True),
    ("xarray >=2025.1", "xarray 2025.1.0", True),
    ("numpy >=2", "numpy >=2,<2.3", True),
    ("numpy >=1.26,<2", "numpy 1.26.4", True),
    ("numpy >=1.20,<1.30", "numpy >1.25,<1.26", True),
    ("numpy=1.26", "numpy==1.26.4", True),  # '=1.26' means 1.26.*
    ("numpy >=2,!=2.1.0", "numpy 2.1.*", True),  # 2.1.1 is fine
    ("flox <1", "flox 0.9.*", True),
    ("jupyterlab >=4.4", "jupyterlab >=4.4,<5", True),
    ("openssl >=3.0.8", "openssl 3.0.*", True),
    ("cuda-version 12.*", "cuda-version >=12.0,<13", True),
    ("cuda-version >=12,<13", "cuda-version 12.6.*", True),
    ("r-base >=4.3", "r-base 4.4.*", True),
    ("pandas >=2.2", "pandas ~=2.2.3", True),
    ("numpy[version='>=2']", "numpy 2.1.*", True),
    # versions: a child may not leave the parent's range
    ("python 3.12.*", "python 3.11.*", False),
    ("python 3.12.*", "python >=3.13", False),
    ("python 3.12.*", "python <3.12", False),
    ("python >=3.10,<3.13", "python 3.13.*", False),
    ("python 3.12.*|3.13.*", "python 3.11.*", False),
    ("python >=3.11", "python <3.11", False),
    ("xarray >=2025.1", "xarray <2025.1", False),
    ("numpy >=2", "numpy 1.26.*", False),
    ("numpy >=2", "numpy[version='<2']", False),
    ("numpy >=1.26,<2", "numpy 2.0.*", False),
    ("numpy==1.26.4", "numpy==1.26.3", False),
    ("numpy >=2,!=2.1.0", "numpy 2.1.0", False),
    ("flox <1", "flox >=1", False),
    ("zarr >=3", "zarr 2.18.*", False),
    ("scipy 1.10.*", "scipy >=1.11", False),
    ("jupyterlab >=4.4", "jupyterlab 4.3.*", False),
    ("cuda-version 12.*", "cuda-version 11.8", False),
    ("r-base >=4.3", "r-base 4.2.*", False),
    ("pandas <2", "pandas ~=2.2.3", False),
    # build strings: globs that some build string satisfies together
    ("pytorch >=2.5 cuda*", "pytorch 2.5.1 cuda*", True),
    ("pytorch * cuda*", "pytorch * cuda126*", True),
    ("pytorch * cuda*", "pytorch * *py312*", True),  # cuda126_mkl_py312_h..._300
    ("pytorch >=2.5 cuda*", "pytorch 2.5.* *py312*", True),
    ("hdf5 * mpi_*", "hdf5 * mpi_openmpi_*", True),
    ("hdf5 * mpi_*", "hdf5 * *openmpi*", True),  # mpi_openmpi_h..._100
    ("libblas * *mkl", "libblas 3.9.* *mkl", True),
    ("python * *_cpython", "python 3.12.* h*_cpython", True),
    ("python 3.12.*", "python 3.12.* *_cpython", True),
    ("pytorch >=2.5 cuda*", "pytorch >=2.5 cpu*", False),
    ("libblas * *mkl", "libblas * *openblas", False),
    ("hdf5 * mpi_openmpi_*", "hdf5 * nompi_*", False),
    ("python 3.12.* *_cpython", "python 3.12.* *_cp312", False),
    # channels
    ("conda-forge::numpy", "conda-forge::numpy >=2", True),
    ("conda-forge::numpy", "numpy >=2", True),
    ("conda-forge::numpy", "defaults::numpy", False),
]


@pytest.mark.parametrize(
    ("parent", "child", "expected"),
    NARROWING,
    ids=[f"{p} | {c}" for p, c, _ in NARROWING],
)
def test_compatible(parent, child, expected):
    assert compatible(parent, child) is expected


@pytest.mark.parametrize(
    ("parent", "child", "expected"),
    [case for case in NARROWING if package_name(case[0]) == "python"],
    ids=[f"{p} | {c}" for p, c, _ in NARROWING if package_name(p) == "python"],
)
def test_narrowing_rule_applies_through_layering(catalog_of, parent, child, expected):
    specs = {
        "base": {"name": "base", "dependencies": [parent]},
        "child": {"name": "child", "extends": "base", "dependencies": ["xarray", child]},
    }
    if expected:
        dist = catalog_of(specs).get("child")
        assert child in dist.dependencies and parent in dist.constraints
    else:
        with pytest.raises(SpecError) as info:
            catalog_of(specs)
        assert info.value.file == "distributions/child/distribution.yml"
        assert info.value.field == "dependencies[1]"
        assert "distributions/base/distribution.yml" in info.value.message


@pytest.mark.parametrize(
    ("leaf_dep", "declared_in"),
    [("python 3.11.*", "base"), ("numpy 1.26.*", "mid")],
)
def test_contradiction_names_the_file_that_declared_the_spec(catalog_of, leaf_dep, declared_in):
    specs = family(
        mid={"name": "mid", "extends": "base", "dependencies": ["numpy >=2"]},
        leaf={"name": "leaf", "extends": "mid", "dependencies": [leaf_dep]},
    )
    with pytest.raises(SpecError) as info:
        catalog_of(specs, BASE_FILES)
    assert info.value.file == "distributions/leaf/distribution.yml"
    assert f"distributions/{declared_in}/distribution.yml" in info.value.message


# ---------------------------------------------------------------- structure of the catalog


def test_cycle_of_two(catalog_of):
    with pytest.raises(SpecError) as info:
        catalog_of({"a": {"name": "a", "extends": "b"}, "b": {"name": "b", "extends": "a"}})
    assert info.value.field == "extends"
    assert "a -> b -> a" in info.value.message


def test_self_extends(catalog_of):
    with pytest.raises(SpecError) as info:
        catalog_of({"me": {"name": "me", "extends": "me"}})
    assert info.value.file == "distributions/me/distribution.yml"
    assert info.value.field == "extends"
    assert "me -> me" in info.value.message


def test_missing_parent(catalog_of):
    with pytest.raises(SpecError) as info:
        catalog_of({"kid": {"name": "kid", "extends": "ghost"}})
    assert info.value.file == "distributions/kid/distribution.yml"
    assert info.value.field == "extends"
    assert "ghost" in info.value.message


def test_collect_reports_each_problem_once_and_keeps_the_rest(make_project):
    root = make_project(
        {
            "base": {"name": "base", "dependencies": ["python 3.12.*"]},
            "good": {"name": "good", "extends": "base"},
            "one": {"name": "one", "extends": "three"},
            "two": {"name": "two", "extends": "one"},
            "three": {"name": "three", "extends": "two"},
            "hanger": {"name": "hanger", "extends": "one"},
            "orphan": {"name": "orphan", "extends": "ghost"},
            "orphan-kid": {"name": "orphan-kid", "extends": "orphan"},
            "broken": {"name": "broken", "dependencies": ["numpy >>2"]},
            "broken-kid": {"name": "broken-kid", "extends": "broken"},
        }
    )
    problems: list[SpecError] = []
    catalog = Catalog.load(Project.at(root), collect=problems)
    assert sorted(catalog.distributions) == ["base", "good"]
    lines = sorted(str(p) for p in problems)
    assert len(lines) == 3, lines
    assert sum("cycle" in line for line in lines) == 1
    assert sum("ghost" in line for line in lines) == 1
    assert sum("numpy >>2" in line for line in lines) == 1


def test_names_are_parents_first_then_by_name(catalog_of):
    specs = {
        "zeta": {"name": "zeta"},
        "alpha": {"name": "alpha", "extends": "zeta"},
        "mid": {"name": "mid", "extends": "alpha"},
        "beta": {"name": "beta"},
        "aaa": {"name": "aaa", "extends": "mid"},
    }
    names = catalog_of(specs).names()
    assert sorted(names) == sorted(specs)
    for name, spec in specs.items():
        if "extends" in spec:
            assert names.index(spec["extends"]) < names.index(name)
    assert names == ["zeta", "alpha", "mid", "aaa", "beta"]


def test_children_and_descendants(catalog_of):
    specs = family(
        pangeo={"name": "pangeo", "extends": "base"},
        gpu={"name": "gpu", "extends": "pangeo"},
        r={"name": "r", "extends": "base"},
        lone={"name": "lone"},
    )
    catalog = catalog_of(specs, BASE_FILES)
    assert catalog.children("base") == ["pangeo", "r"]
    assert catalog.children("pangeo") == ["gpu"]
    assert catalog.children("gpu") == []
    assert catalog.descendants("base") == ["pangeo", "gpu", "r"]
    assert catalog.descendants("pangeo") == ["gpu"]
    assert catalog.descendants("lone") == []


def test_get_and_select(catalog_of):
    specs = family(pangeo={"name": "pangeo", "extends": "base"}, lone={"name": "lone"})
    catalog = catalog_of(specs, BASE_FILES)
    with pytest.raises(SpecError) as info:
        catalog.get("nope")
    assert "nope" in str(info.value) and "pangeo" in str(info.value)
    assert catalog.select(("pangeo", "base")) == ["base", "pangeo"]
    assert catalog.select((), all_=False) == catalog.names()
    assert catalog.select(("lone",), all_=True) == catalog.names()
    with pytest.raises(SpecError):
        catalog.select(("pangeo", "nope"))


def test_shipped_catalog(repo_root):
    catalog = Catalog.load(Project.at(repo_root))
    names = catalog.names()
    assert names[0] == "base"
    assert {"pangeo", "gpu-ml", "r-edu"} <= set(catalog.descendants("base"))
    base = catalog.get("base")
    base_python = [d for d in base.dependencies if package_name(d) == "python"]
    assert base_python
    for name in catalog.descendants("base"):
        dist = catalog.get(name)
        assert set(dist.platforms) <= set(base.platforms)
        assert base_python[0] in dist.constraints
        assert set(base.channels) <= set(dist.channels)


def test_a_pin_three_levels_down_is_checked_against_the_root(make_project, run_cli):
    """The middle spec narrows without contradicting; the leaf agrees with the middle but
    contradicts the root: refused at validate, naming both files."""
    root = make_project(
        {
            "a": {"name": "a", "dependencies": ["python 3.12.*"]},
            "b": {"name": "b", "extends": "a", "dependencies": ["python >=3.10"]},
            "c": {"name": "c", "extends": "b", "dependencies": ["python <3.12"]},
        }
    )
    result = run_cli("validate", root=root)
    assert result.code == 1
    assert len(result.err_lines) == 1
    line = result.err_lines[0]
    assert line.startswith("distributions/c/distribution.yml: dependencies[0]")
    assert "distributions/a/distribution.yml" in line


def test_specs_of_a_chain_must_agree_all_together(make_project, run_cli):
    root = make_project(
        {
            "a": {"name": "a", "dependencies": ["numpy 1.*|3.*"]},
            "b": {"name": "b", "extends": "a", "dependencies": ["numpy 1.*|2.*"]},
            "c": {"name": "c", "extends": "b", "dependencies": ["numpy 2.*|3.*"]},
        }
    )
    result = run_cli("validate", root=root)
    assert result.code == 1, result
    assert "distributions/c/distribution.yml: dependencies[0]" in result.stderr


def test_an_unreadable_channel_is_refused_at_validate(make_project, run_cli):
    root = make_project({"a": {"name": "a", "channels": ["conda-forge", "nodefaults"]}})
    result = run_cli("validate", root=root)
    assert result.code == 1
    assert "distributions/a/distribution.yml: channels[1]" in result.stderr
