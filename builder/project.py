"""Where a project's files live. Every stage finds its inputs and outputs here.

A project is any folder with ``distributions/``; ``scistacks --root DIR`` points at one,
like ``git -C``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ScistacksError

SPEC_FILE = "distribution.yml"
SMOKE_RESULTS = "results.json"  # in a smoke results folder (``smoke --results-dir`` too)

# The platforms we build images for, one row each: conda subdir, OCI platform, and the
# machine name (``uname -m``, a wheel's platform tag). Every other spelling derives from it.
IMAGE_PLATFORMS = (
    ("linux-64", "linux/amd64", "x86_64"),
    ("linux-aarch64", "linux/arm64", "aarch64"),
    ("linux-ppc64le", "linux/ppc64le", "ppc64le"),
)
OCI_PLATFORMS = {subdir: oci for subdir, oci, _ in IMAGE_PLATFORMS}
ARCHES = {oci: oci.split("/", 1)[1] for _, oci, _ in IMAGE_PLATFORMS}  # docker's arch names
MACHINES = {subdir: machine for subdir, _, machine in IMAGE_PLATFORMS}
DEFAULT_PLATFORMS = ("linux-64", "linux-aarch64")  # a spec without platforms:
# Platforms a distribution may lock for (images only exist for the linux ones).
KNOWN_PLATFORMS = ("linux-64", "linux-aarch64", "linux-ppc64le", "osx-64", "osx-arm64", "win-64")


def oci_platform(conda_platform: str) -> str:
    try:
        return OCI_PLATFORMS[conda_platform]
    except KeyError:
        raise ScistacksError(
            f"platform {conda_platform!r} has no container image platform"
        ) from None


def conda_platform(platform: str) -> str:
    """Accept ``linux/amd64``, ``amd64`` or ``linux-64``; return the conda subdir."""
    value = platform.strip()
    if value in KNOWN_PLATFORMS:
        return value
    for subdir, oci in OCI_PLATFORMS.items():
        if value in (oci, oci.split("/", 1)[1]):
            return subdir
    raise ScistacksError(
        f"unknown platform {platform!r} (expected one of {', '.join(OCI_PLATFORMS.values())} "
        f"or {', '.join(KNOWN_PLATFORMS)})",
        field="--platform",
    )


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike | None = None) -> Project:
        path = Path(root or os.environ.get("SCISTACKS_ROOT") or ".").resolve()
        if not (path / "distributions").is_dir():
            raise ScistacksError("not a scistacks project (no distributions/ folder)", file=path)
        return cls(path)

    # inputs
    @property
    def distributions_dir(self) -> Path:
        return self.root / "distributions"

    def spec_path(self, name: str) -> Path:
        return self.distributions_dir / name / SPEC_FILE

    def distribution_names(self) -> list[str]:
        """Every folder of distributions/ with a spec, a spec that is a dangling symbolic
        link included (reading it is the error); hidden folders are not distributions."""
        out = []
        for folder in self.distributions_dir.iterdir():
            if folder.name.startswith("."):
                continue
            spec = folder / SPEC_FILE
            if spec.is_file() or spec.is_symlink() or (folder.is_symlink() and not folder.exists()):
                out.append(folder.name)
        return sorted(out)

    # lock stage
    def lock_dir(self, name: str) -> Path:
        return self.root / "lockfiles" / name

    def lockfile(self, name: str) -> Path:
        return self.lock_dir(name) / "conda-lock.yml"

    # context stage
    def context_dir(self, name: str, platform: str) -> Path:
        return self.root / "images" / name / platform

    # smoke / publish / profiles outputs (not committed)
    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def pypi_metadata_cache(self) -> Path:
        """Core metadata of PyPI wheels the lock read, by the wheel's sha256 (immutable)."""
        return self.build_dir / "cache" / "pypi-metadata"

    # stage records (builder.records)
    def image_record(self, name: str) -> Path:
        return self.build_dir / "images" / f"{name}.json"

    def results_dir(self, name: str) -> Path:
        return self.build_dir / "smoke" / name

    def smoke_results(self, name: str) -> Path:
        return self.results_dir(name) / SMOKE_RESULTS

    def publish_record(self, name: str) -> Path:
        return self.build_dir / "publish" / f"{name}.json"

    def relative(self, path: str | os.PathLike) -> str:
        """A path as users should see it in messages: relative to the project when inside it."""
        p = Path(path)
        lexical = Path(os.path.normpath(p if p.is_absolute() else Path.cwd() / p))
        try:  # not resolved first: a symbolic link is shown by its own name
            return str(lexical.relative_to(self.root))
        except ValueError:
            pass
        try:
            return str(p.resolve().relative_to(self.root))
        except ValueError:
            return str(p)
