"""Layering: the effective spec of a distribution is its ``extends`` chain merged.

Rules (parent first, then child):
- channels, apt, imports, notebooks, post_build and start scripts accumulate;
- dependencies and pip accumulate by package name; a child may narrow a parent's spec
  (both constraints are kept for the solver) but never contradict it;
- platforms are inherited; a child may drop platforms, never add one its parent lacks;
- virtual_packages and base_image are inherited and may be overridden;
- name, description, hub and solve_group belong to the distribution itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from builder.errors import SpecError
from builder.spec import matchspec
from builder.spec.models import DEFAULT_PLATFORMS, DistributionSpec, Hub, Notebook


@dataclass(frozen=True)
class NotebookRef:
    """A notebook of the effective spec, with its path relative to the project root."""

    path: str
    owner: str  # the distribution that declared it
    timeout: int = 600
    cell_timeout: int = 300
    network: bool = False
    platforms: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Distribution:
    """The effective, merged spec of one distribution."""

    name: str
    description: str
    parent: str | None
    chain: tuple[str, ...]  # root ... self
    spec_files: tuple[str, ...]  # relative to the project root, root ... self
    channels: tuple[str, ...]
    platforms: tuple[str, ...]
    dependencies: tuple[str, ...]  # one spec per package: the narrowest (child's) form
    constraints: tuple[str, ...]  # every spec of the chain, as the solver sees them
    pip: tuple[str, ...]
    apt: tuple[str, ...]
    virtual_packages: dict[str, str]
    notebooks: tuple[NotebookRef, ...]
    imports: tuple[str, ...]
    post_build: tuple[str, ...]  # script paths relative to the project root, root first
    start: tuple[str, ...]
    base_image: str | None
    solve_group: str | None
    hub: Hub | None
    origins: dict[str, str] = field(
        default_factory=dict, compare=False
    )  # package -> declaring file
    constraint_origins: dict[str, str] = field(
        default_factory=dict, compare=False
    )  # constraint -> the file that first declared it
    constraint_fields: dict[str, str] = field(
        default_factory=dict, compare=False
    )  # constraint -> its field there, e.g. dependencies[2]
    own: DistributionSpec = field(repr=False, compare=False, default=None)

    @property
    def direct_names(self) -> tuple[str, ...]:
        return tuple(matchspec.package_name(d) for d in self.dependencies)

    def lock_inputs(self) -> dict:
        """What determines this distribution's lock (not notebooks, apt or hub)."""
        return {
            "channels": list(self.channels),
            "platforms": list(self.platforms),
            "constraints": sorted(self.constraints),
            "pip": sorted(self.pip),
            "virtual_packages": dict(sorted(self.virtual_packages.items())),
        }

    def lock_inputs_hash(self) -> str:
        blob = json.dumps(self.lock_inputs(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def to_dict(self) -> dict:
        """The effective spec in the same shape as a distribution.yml (for ``show``)."""
        out: dict = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.parent:
            out["extends"] = self.parent
        out["channels"] = list(self.channels)
        out["platforms"] = list(self.platforms)
        out["dependencies"] = list(self.dependencies)
        for key in ("pip", "apt", "imports", "post_build", "start"):
            value = getattr(self, key)
            if value:
                out[key] = list(value)
        if self.virtual_packages:
            out["virtual_packages"] = dict(self.virtual_packages)
        if self.notebooks:
            out["notebooks"] = [
                {k: v for k, v in nb.__dict__.items() if v is not None and k != "owner"}
                | ({"platforms": list(nb.platforms)} if nb.platforms else {})
                for nb in self.notebooks
            ]
        if self.base_image:
            out["base_image"] = self.base_image
        if self.solve_group:
            out["solve_group"] = self.solve_group
        if self.hub:
            out["hub"] = self.hub.model_dump(exclude_defaults=True)
        out["inherits_from"] = list(self.chain[:-1])
        return out


def _pip_name(req: str) -> str:
    try:
        return Requirement(req).name.lower().replace("_", "-")
    except Exception:
        return req


def merge(parent: Distribution | None, spec: DistributionSpec, spec_file: str) -> Distribution:
    """Merge one spec over its parent's effective spec."""
    folder = str(Path(spec_file).parent)

    def rel(path: str) -> str:
        return str(Path(folder, path))

    if parent is None:
        channels: list[str] = []
        platforms = tuple(spec.platforms or DEFAULT_PLATFORMS)
        deps: dict[str, str] = {}
        origins: dict[str, str] = {}
        constraint_origins: dict[str, str] = {}
        constraint_fields: dict[str, str] = {}
        constraints: list[str] = []
        pip: dict[str, str] = {}
        apt: list[str] = []
        virtual: dict[str, str] = {}
        notebooks: list[NotebookRef] = []
        imports: list[str] = []
        post_build: list[str] = []
        start: list[str] = []
        base_image = spec.base_image
        chain: tuple[str, ...] = (spec.name,)
        files: tuple[str, ...] = (spec_file,)
    else:
        channels = list(parent.channels)
        if spec.platforms is not None:
            extra = [p for p in spec.platforms if p not in parent.platforms]
            if extra:
                raise SpecError(
                    f"platform {extra[0]!r} is not a platform of parent {parent.name!r} "
                    f"({parent.spec_files[-1]}); a child may only drop platforms",
                    file=spec_file,
                    field="platforms",
                )
            platforms = tuple(spec.platforms)
        else:
            platforms = parent.platforms
        deps = {matchspec.package_name(d): d for d in parent.dependencies}
        origins = dict(parent.origins)
        constraint_origins = dict(parent.constraint_origins)
        constraint_fields = dict(parent.constraint_fields)
        constraints = list(parent.constraints)
        pip = {_pip_name(r): r for r in parent.pip}
        apt = list(parent.apt)
        virtual = dict(parent.virtual_packages)
        notebooks = list(parent.notebooks)
        imports = list(parent.imports)
        post_build = list(parent.post_build)
        start = list(parent.start)
        base_image = spec.base_image or parent.base_image
        chain = (*parent.chain, spec.name)
        files = (*parent.spec_files, spec_file)

    channels += [c for c in spec.channels if c not in channels]
    for i, dep in enumerate(spec.dependencies):
        name = matchspec.package_name(dep)
        if parent is not None:
            # every spec of the whole chain for this package, not only the nearest one
            chain_specs = [c for c in constraints if matchspec.package_name(c) == name]
            for c in chain_specs:
                if not matchspec.compatible(c, dep):
                    owner = constraint_origins.get(
                        c, parent.origins.get(name, parent.spec_files[-1])
                    )
                    raise SpecError(
                        f"{dep!r} contradicts {c!r} from {owner}; a child may narrow a "
                        "parent's spec but not contradict it",
                        file=spec_file,
                        field=f"dependencies[{i}]",
                    )
            if len(chain_specs) > 1 and not matchspec.compatible_all([*chain_specs, dep]):
                owners = sorted({constraint_origins.get(c, "?") for c in chain_specs})
                raise SpecError(
                    f"{dep!r} leaves no version that also satisfies "
                    f"{', '.join(repr(c) for c in chain_specs)} (from {', '.join(owners)})",
                    file=spec_file,
                    field=f"dependencies[{i}]",
                )
        deps[name] = dep
        origins[name] = spec_file
        if dep not in constraints:
            constraints.append(dep)
            constraint_origins.setdefault(dep, spec_file)
            constraint_fields.setdefault(dep, f"dependencies[{i}]")
    for req in spec.pip:
        pip[_pip_name(req)] = req
    apt += [a for a in spec.apt if a not in apt]
    virtual.update(spec.virtual_packages)
    known = {nb.path for nb in notebooks}
    for nb in spec.notebooks:
        model = Notebook(path=nb) if isinstance(nb, str) else nb
        ref = NotebookRef(
            path=rel(model.path),
            owner=spec.name,
            timeout=model.timeout,
            cell_timeout=model.cell_timeout,
            network=model.network,
            platforms=tuple(model.platforms) if model.platforms else None,
        )
        if ref.path not in known:
            notebooks.append(ref)
    imports += [m for m in spec.imports if m not in imports]
    if spec.post_build:
        post_build.append(rel(spec.post_build))
    if spec.start:
        start.append(rel(spec.start))

    return Distribution(
        name=spec.name,
        description=spec.description,
        parent=spec.extends,
        chain=chain,
        spec_files=files,
        channels=tuple(channels),
        platforms=platforms,
        dependencies=tuple(deps.values()),
        constraints=tuple(constraints),
        pip=tuple(pip.values()),
        apt=tuple(apt),
        virtual_packages=virtual,
        notebooks=tuple(notebooks),
        imports=tuple(imports),
        post_build=tuple(post_build),
        start=tuple(start),
        base_image=base_image,
        solve_group=spec.solve_group,
        hub=spec.hub,
        origins=origins,
        constraint_origins=constraint_origins,
        constraint_fields=constraint_fields,
        own=spec,
    )
