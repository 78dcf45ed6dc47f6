"""Install the locked PyPI wheels into the staging prefix, on the build host.

The PyPA ``installer`` library unpacks each verified wheel into the ``site-packages`` of
the Python the lock was resolved for (``conventions.SITE_PACKAGES``), writes its console
scripts with a shebang naming that Python as it sits in the image, and writes ``RECORD``
and ``INSTALLER`` (``scistacks``) as pip does. Nothing from the wheel runs and no
interpreter of the target is needed, so an aarch64 environment installs on an amd64 host.
No dependency is resolved here: the lock is the whole set (pip's ``--no-deps``).

``.pyc`` files are compiled later, in the target image, by the same checked-hash step as
conda's packages (``builder.image.link``); ``register_compiled`` then lists them in their
wheel's ``RECORD`` (hash-less, as pip lists the files it compiles).
"""

from __future__ import annotations

import csv
import io
import os
import warnings
import zipfile
from pathlib import Path, PurePosixPath

from installer import install as install_wheel
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.sources import WheelFile
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from builder.errors import BuildError
from builder.image.conventions import ENV_PREFIX, SITE_PACKAGES, SYSTEM_PYTHON
from builder.image.link import source_of
from builder.lock.model import LockedDistribution, PypiPackage
from builder.project import MACHINES

INSTALLER = "scistacks"


def site_packages(python: str) -> str:
    """``lib/python3.11/site-packages``: where wheels go, relative to the prefix."""
    return SITE_PACKAGES.format(python=python)


def interpreter(python: str, conda_python: bool) -> str:
    """The Python a console script names in the image: the environment's own, or the
    system's (a distribution on the base image's Python, such as the demo)."""
    if conda_python:
        return f"{ENV_PREFIX}/bin/python{python}"
    return SYSTEM_PYTHON.format(python=python)


def target_python(
    locked: LockedDistribution, platform: str, pip_python: str | None, lockfile: str
) -> tuple[str, bool]:
    """``("3.11", True)``: the Python the wheels were resolved for, and whether it is the
    environment's own (conda's ``python``) or the system's (the spec's ``pip_python``, which
    the lock's input hash covers)."""
    conda = locked.version_of("python", platform) if locked.packages.get(platform) else None
    if conda:
        return ".".join(conda.split(".")[:2]), True
    if not pip_python:
        raise BuildError(
            f"the {platform} lock has PyPI wheels but neither a conda python nor pip_python",
            file=lockfile,
        )
    return pip_python, False


def _check_tags(package: PypiPackage, platform: str, lockfile: str) -> None:
    """A wheel built for another machine would install and fail at import: refuse it."""
    try:
        _, _, _, tags = parse_wheel_filename(package.file_name)
    except InvalidWheelFilename as exc:
        raise BuildError(f"pypi {package.name}: not a wheel: {exc}", file=lockfile) from None
    arch = MACHINES.get(platform, "")
    if not any(t.platform == "any" or t.platform.endswith(f"_{arch}") for t in tags):
        wanted = arch or platform
        raise BuildError(
            f"pypi {package.name} {package.version}: {package.file_name} is not for {wanted}",
            file=lockfile,
        )


def install(
    staging: Path,
    wheels: list[tuple[PypiPackage, Path]],
    *,
    platform: str,
    python: str,
    conda_python: bool,
    lockfile: str,
) -> dict[str, list[str]]:
    """Install verified ``(package, wheel file)`` pairs; return each package's files,
    relative to the prefix (what ``owners`` reads back)."""
    site = staging / site_packages(python)
    scheme = {
        "purelib": str(site),
        "platlib": str(site),
        "scripts": str(staging / "bin"),
        "data": str(staging),
        "headers": str(staging / "include" / f"python{python}"),
    }
    destination = SchemeDictionaryDestination(
        scheme,
        interpreter=interpreter(python, conda_python),
        script_kind="posix",
    )
    for package, path in sorted(wheels, key=lambda w: w[0].name):
        _check_tags(package, platform, lockfile)
        what = f"pypi {package.name} {package.version} ({package.file_name})"
        try:
            with WheelFile.open(path) as source, warnings.catch_warnings():
                # installer skips (and warns of) .pyc files a wheel ships: the image's own
                # compile step writes them
                warnings.simplefilter("ignore", RuntimeWarning)
                source.validate_record()  # the wheel's own RECORD matches its files
                install_wheel(source, destination, {"INSTALLER": f"{INSTALLER}\n".encode()})
        except FileExistsError as exc:
            rel = os.path.relpath(exc.args[0].removeprefix("File already exists: "), staging)
            raise BuildError(
                f"{what} would overwrite {rel}, which the conda environment installs",
                file=lockfile,
            ) from None
        except (InstallerError, ValueError, KeyError, zipfile.BadZipFile, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise  # the build folder's own trouble (a full disk): the caller names it
            raise BuildError(f"{what}: cannot install: {exc}", file=lockfile) from None
    return owners(staging, python)


def _records(staging: Path, python: str) -> dict[str, Path]:
    """Our wheels' ``RECORD`` files by package name (conda's own dist-info is not ours)."""
    site = staging / site_packages(python)
    out: dict[str, Path] = {}
    for dist_info in sorted(site.glob("*.dist-info")) if site.is_dir() else []:
        marker = dist_info / "INSTALLER"
        if marker.is_file() and marker.read_text().strip() == INSTALLER:
            name = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
            out[str(canonicalize_name(name))] = dist_info / "RECORD"
    return out


def _prefix_relative(site_rel: str, record_path: str) -> str:
    """A RECORD path (relative to site-packages, ``../../../bin/x`` for scripts) made
    relative to the prefix."""
    return os.path.normpath(str(PurePosixPath(site_rel) / record_path))


def owners(staging: Path, python: str) -> dict[str, list[str]]:
    """Package name -> the prefix-relative files its ``RECORD`` lists."""
    site_rel = site_packages(python)
    out: dict[str, list[str]] = {}
    for name, record in _records(staging, python).items():
        out[name] = sorted(_prefix_relative(site_rel, row[0]) for row in _read(record))
    return out


def _read(record: Path) -> list[list[str]]:
    with open(record, newline="") as fh:
        return [row for row in csv.reader(fh) if row]


def register_compiled(staging: Path, python: str) -> int:
    """List the ``.pyc`` files compiled in the image beside our wheels' sources in their
    ``RECORD`` (``path,,``, as pip lists the files it compiles). Returns how many."""
    site = staging / site_packages(python)
    records = _records(staging, python)
    rows = {name: _read(record) for name, record in records.items()}
    owner = {row[0]: name for name, listed in rows.items() for row in listed}
    new: dict[str, list[list[str]]] = {}
    for pyc in sorted(site.rglob("__pycache__/*.pyc")) if rows else []:
        rel = pyc.relative_to(site).as_posix()
        name = owner.get(source_of(rel) or "")
        if name and rel not in owner:
            new.setdefault(name, []).append([rel, "", ""])
    for name, extra in new.items():
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(sorted(rows[name] + extra))
        records[name].write_text(out.getvalue())
    return sum(len(extra) for extra in new.values())
