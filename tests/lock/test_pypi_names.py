"""The conda -> PyPI name mapping (builder/lock/pypi_names.yml) and its rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name

from builder.lock import condalock, pypi_names
from builder.lock.model import LockedPackage

REPO = Path(__file__).resolve().parents[2]
LOCKS = sorted(REPO.glob("lockfiles/*/conda-lock.yml")) + sorted(
    REPO.glob("examples/offline-pangeo/lockfiles/*/conda-lock.yml")
)
CONDA_NAMES = REPO / "examples" / "offline-pangeo" / "channel-src" / "conda-names.yml"


def pkg(name: str, version: str = "1.0", depends: tuple[str, ...] = ("python >=3.10",)):
    url = f"https://conda.anaconda.org/c/noarch/{name}-{version}-0.conda"
    return LockedPackage(name, version, "0", "linux-64", url, "0" * 32, "", "noarch", depends)


def test_every_key_is_a_conda_name_and_every_value_a_normalised_pypi_name():
    data = yaml.safe_load(pypi_names.DATA.read_text())["mapping"]
    for conda, pypi in data.items():
        assert conda == conda.lower() and " " not in conda
        assert pypi is None or pypi == canonicalize_name(pypi), conda


@pytest.mark.parametrize(
    ("conda", "pypi"),
    [
        ("pytorch", "torch"),
        ("matplotlib-base", "matplotlib"),
        ("dask-core", "dask"),
        ("msgpack-python", "msgpack"),
        ("python-tzdata", "tzdata"),
        ("brotli-python", "brotli"),
        ("jupyter_server", "jupyter-server"),  # the rule: PEP 503 normalised
        ("typing_extensions", "typing-extensions"),
        ("python", None),
        ("demo-pylib", "demo-pylib"),  # no python dependency: listed
    ],
)
def test_names(conda, pypi):
    assert (
        pypi_names.pypi_name(pkg(conda, depends=("python",) if conda != "demo-pylib" else ()))
        == pypi
    )


def test_only_python_packages_are_provided():
    assert pypi_names.pypi_name(pkg("libzlib", depends=())) is None  # a C library
    assert pypi_names.pypi_name(pkg("tzdata", depends=())) is None  # the zoneinfo data, not PyPI's


def test_a_metapackage_yields_to_the_package_it_wraps():
    locked = [pkg("dask", "2025.1.0"), pkg("dask-core", "2025.1.0"), pkg("matplotlib", "3.9.0")]
    out = pypi_names.provided([*locked, pkg("matplotlib-base", "3.9.0")])
    assert out["dask"].conda.name == "dask-core"
    assert out["matplotlib"].conda.name == "matplotlib-base"


def test_offline_pangeo_renames_map_back():
    """examples/offline-pangeo converts PyPI wheels into conda packages, renamed for
    conda-forge: each conda name maps back to the PyPI project it came from."""
    renames = yaml.safe_load(CONDA_NAMES.read_text())["rename"]
    for pypi, conda in renames.items():
        assert pypi_names.pypi_name(pkg(conda)) == canonicalize_name(pypi), conda


@pytest.mark.parametrize("lockfile", LOCKS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_python_package_of_the_committed_locks_has_a_pypi_name(lockfile):
    locked = condalock.read(lockfile)
    for platform in locked.platforms:
        provided = pypi_names.provided(locked.packages[platform])
        for p in locked.packages[platform]:
            conda_only = pypi_names.mapping().get(p.name, "") is None  # listed as no PyPI project
            if conda_only or not any(d.split()[0] == "python" for d in p.depends):
                continue
            name = pypi_names.pypi_name(p)
            assert name is not None and name in provided, p.name
            assert provided[name].version is not None, f"{p.name} {p.version} is not PEP 440"
