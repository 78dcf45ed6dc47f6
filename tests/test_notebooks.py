"""Lint the sample notebooks that the smoke stage executes inside each image.

Every notebook listed under ``notebooks:`` in a ``distributions/*/distribution.yml`` (a path
relative to that distribution's folder, or a mapping with a ``path``) must exist, be a valid
nbformat 4 notebook with no stored outputs, and ask for a kernel that the image has: ``ir``
only in a distribution that depends on r-irkernel (itself or through ``extends``),
``python3`` otherwise. Its ``language_info`` must be that kernel's language.

The specs are read with plain ``yaml.safe_load``, not through ``builder.spec``, so that this
test judges the files as written.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = REPO_ROOT / "distributions"

# kernelspec name -> its language (kernelspec.language and language_info.name)
KERNEL_LANGUAGES = {"python3": "python", "ir": "R"}
R_KERNEL_PACKAGE = "r-irkernel"

# "pytorch >=2.5 cuda*", "conda-forge::r-irkernel", "numpy>=2" -> the package name
_NAME_RE = re.compile(r"^\s*(?:[\w./-]+::)?([A-Za-z0-9_][A-Za-z0-9_.\-]*)")


def package_name(matchspec: str) -> str:
    match = _NAME_RE.match(matchspec)
    assert match, f"cannot read a package name from {matchspec!r}"
    return match.group(1).lower()


def load_specs() -> dict[str, tuple[Path, dict]]:
    """Distribution name -> (its folder, its parsed distribution.yml)."""
    specs = {}
    for path in sorted(DISTRIBUTIONS.glob("*/distribution.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        assert isinstance(data, dict), f"{path}: not a mapping"
        specs[data.get("name") or path.parent.name] = (path.parent, data)
    return specs


SPECS = load_specs()


def effective_dependencies(name: str) -> set[str]:
    """Package names that ``name`` and the distributions it extends depend on."""
    names: set[str] = set()
    seen: set[str] = set()
    current: str | None = name
    while current and current in SPECS and current not in seen:
        seen.add(current)
        data = SPECS[current][1]
        names.update(package_name(str(dep)) for dep in data.get("dependencies") or [])
        current = data.get("extends")
    return names


def notebook_entries() -> list[tuple[str, Path, str]]:
    """(distribution, notebook file, path as listed) for every notebook of every spec."""
    entries = []
    for name, (folder, data) in SPECS.items():
        for item in data.get("notebooks") or []:
            rel = item.get("path") if isinstance(item, dict) else item
            entries.append((name, folder / str(rel), str(rel)))
    return entries


NOTEBOOKS = notebook_entries()
NOTEBOOK_IDS = [f"{dist}:{rel}" for dist, _, rel in NOTEBOOKS]


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def test_specs_declare_notebooks():
    assert SPECS, f"no distribution.yml found under {DISTRIBUTIONS}"
    assert NOTEBOOKS, "no distribution lists a notebook: the smoke stage would run none"
    for name, (_, data) in SPECS.items():
        for item in data.get("notebooks") or []:
            rel = item.get("path") if isinstance(item, dict) else item
            assert isinstance(rel, str) and rel.endswith(".ipynb"), f"{name}: notebook {item!r}"


@pytest.mark.parametrize(
    ("matchspec", "name"),
    [
        ("r-irkernel", "r-irkernel"),
        ("pytorch >=2.5 cuda*", "pytorch"),
        ("python 3.12.*", "python"),
        ("numpy>=2", "numpy"),
        ("conda-forge::r-irkernel >=1.3", "r-irkernel"),
        ("demo-data 1.0.*  ", "demo-data"),
    ],
)
def test_package_name(matchspec, name):
    assert package_name(matchspec) == name


@pytest.mark.parametrize(("dist", "path", "rel"), NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_notebook_exists(dist, path, rel):
    assert path.is_file(), f"{dist} lists {rel}, but {path.relative_to(REPO_ROOT)} does not exist"


@pytest.mark.parametrize(("dist", "path", "rel"), NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_notebook_is_valid_nbformat_4(dist, path, rel):
    if not path.is_file():
        pytest.fail(f"{path.relative_to(REPO_ROOT)} is missing")
    nb = read(path)
    assert nb.nbformat == 4, f"{rel}: nbformat {nb.nbformat}, expected 4"
    nbformat.validate(nb)  # raises nbformat.ValidationError


@pytest.mark.parametrize(("dist", "path", "rel"), NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_notebook_has_no_outputs(dist, path, rel):
    if not path.is_file():
        pytest.fail(f"{path.relative_to(REPO_ROOT)} is missing")
    dirty = [
        f"cell {i}" + (f" ({cell.get('id')})" if cell.get("id") else "")
        for i, cell in enumerate(read(path).cells)
        if cell.cell_type == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{rel}: stored outputs or execution counts in {', '.join(dirty)}"


@pytest.mark.parametrize(("dist", "path", "rel"), NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_notebook_kernel_matches_distribution(dist, path, rel):
    if not path.is_file():
        pytest.fail(f"{path.relative_to(REPO_ROOT)} is missing")
    metadata = read(path).metadata
    kernelspec = metadata.get("kernelspec") or {}
    kernel = kernelspec.get("name")

    has_r_kernel = R_KERNEL_PACKAGE in effective_dependencies(dist)
    allowed = {"python3", "ir"} if has_r_kernel else {"python3"}
    hint = "" if has_r_kernel else f" (the 'ir' kernel needs {R_KERNEL_PACKAGE})"
    assert kernel in allowed, (
        f"{rel}: kernelspec {kernel!r}; {dist} provides {sorted(allowed)}{hint}"
    )

    language = KERNEL_LANGUAGES[kernel]
    assert str(kernelspec.get("language", "")).lower() == language.lower(), (
        f"{rel}: kernelspec.language {kernelspec.get('language')!r}, expected {language!r}"
    )
    language_info = metadata.get("language_info") or {}
    assert str(language_info.get("name", "")).lower() == language.lower(), (
        f"{rel}: language_info.name {language_info.get('name')!r} does not match kernel {kernel!r}"
    )
