"""Typed model of ``distributions/NAME/distribution.yml`` (schema version 1).

Field names are what maintainers type for years, so they follow the words of the field:
conda's ``channels``/``dependencies``, repo2docker's ``apt``/``post_build``/``start``,
KubeSpawner's ``display_name``/``default_url``/``node_selector``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from builder.project import KNOWN_PLATFORMS
from builder.spec.schema import Ge, Gt, Model, check

Platform = Literal["linux-64", "linux-aarch64", "linux-ppc64le", "osx-64", "osx-arm64", "win-64"]
assert set(Platform.__args__) == set(KNOWN_PLATFORMS)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*\Z")  # \Z: "$" would allow a final newline
PYTHON_RE = re.compile(r"^3\.[0-9]+\Z")  # pip_python: "3.11"
# Kubernetes quantities: "4G", "512Mi", "1.5"; binary kilo is "Ki", decimal kilo "k"
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?([EPTGM]i?|Ki|k|m)?\Z")


@dataclass(frozen=True)
class Quantity(Model):
    """A Kubernetes resource: what the pod is guaranteed and what it may not exceed."""

    guarantee: str | float | None = None
    limit: str | float | None = None

    @check("guarantee", "limit")
    def _quantity(value):
        if value is not None and not QUANTITY_RE.match(str(value)):
            raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 2, 500m, 4G, 8Gi)")


@dataclass(frozen=True)
class Hub(Model):
    """How the image shows up in a JupyterHub (KubeSpawner) profile list."""

    display_name: str
    description: str = ""
    default_url: str | None = None
    default: bool = False
    cpu: Quantity | None = None
    memory: Quantity | None = None
    gpu: Annotated[int, Ge(0)] = 0
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str | int]] = field(default_factory=list)
    # GPU type choices offered to users, e.g. {"T4": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}}
    gpu_node_choices: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Notebook(Model):
    """A sample notebook the smoke stage executes inside the image."""

    path: str
    timeout: Annotated[int, Gt(0)] = 600  # seconds for the whole notebook
    cell_timeout: Annotated[int, Gt(0)] = 300
    network: bool = False  # opt in: the notebook fetches data
    platforms: list[Platform] | None = None  # default: every platform of the distribution


@dataclass(frozen=True)
class DistributionSpec(Model):
    """One file as written by hand. Layering happens in ``builder.spec.layering``."""

    name: str
    description: str = ""
    extends: str | None = None
    channels: list[str] = field(default_factory=list)
    # None: inherit, or project.DEFAULT_PLATFORMS at the root
    platforms: list[Platform] | None = None
    dependencies: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    # the Python the PyPI packages target when conda locks none (demo: Debian's python3)
    pip_python: str | None = None
    apt: list[str] = field(default_factory=list)
    virtual_packages: dict[str, str] = field(default_factory=dict)
    notebooks: list[str | Notebook] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    post_build: str | None = None  # a script in the distribution folder (repo2docker's postBuild)
    start: str | None = None  # a script in the distribution folder (repo2docker's start)
    base_image: str | None = None  # native engine base; "{arch}" expands to amd64/arm64
    solve_group: str | None = None  # solve apart from the family under this group name
    hub: Hub | None = None

    @check("name", "extends", "solve_group")
    def _name(value):
        if value is not None and not NAME_RE.match(value):
            raise ValueError(
                f"{value!r} is not a valid name (lowercase letters, digits, '.', '_', '-')"
            )

    @check("pip_python", before=True)
    def _pip_python(value):
        if isinstance(value, float):  # YAML reads 3.10 as the number 3.1
            raise ValueError(f'{value!r} is a number: quote the version ("3.11")')
        if value is not None and not (isinstance(value, str) and PYTHON_RE.match(value)):
            raise ValueError(f'{value!r} is not a Python version MAJOR.MINOR (e.g. "3.11")')

    @check("virtual_packages")
    def _virtual(value):
        for key in value:
            if not key.startswith("__"):
                raise ValueError(f"{key!r}: virtual package names start with '__' (e.g. __cuda)")

    @check("platforms")
    def _platforms(value):
        if value is not None:
            if not value:
                raise ValueError("at least one platform is needed")
            if len(set(value)) != len(value):
                raise ValueError("a platform is listed twice")

    @check("notebooks")
    def _notebooks_unique(value):
        paths = [n if isinstance(n, str) else n.path for n in value]
        if len(set(paths)) != len(paths):
            raise ValueError("a notebook is listed twice")
