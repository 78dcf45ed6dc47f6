"""Layering: the effective spec of a distribution is its ``extends`` chain merged.

Rules (parent first, then child):
- channels, apt, imports, notebooks, post_build and start scripts accumulate;
- dependencies and pip accumulate by package name; a child may narrow a parent's spec
  (both constraints are kept for the solver) but never contradict it;
- pip_python (the Python of PyPI packages when conda locks none) is inherited and may be
  overridden;
- platforms are inherited; a child may drop platforms, never add one its parent lacks;
- virtual_packages and base_image are inherited and may be overridden;
- name, description, hub and solve_group belong to the distribution itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import SpecError
from builder.project import DEFAULT_PLATFORMS
from builder.spec import matchspec, pep508
from builder.spec.models import DistributionSpec, Hub, Notebook


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
    pip_python: str | None = None
    pip_constraints: tuple[str, ...] = ()  # every pip requirement of the chain, for uv
    pip_origins: dict[str, tuple[str, str]] = field(
        default_factory=dict, compare=False
    )  # pip requirement -> (the file that first declared it, its field there)

    @property
    def direct_names(self) -> tuple[str, ...]:
        return tuple(matchspec.package_name(d) for d in self.dependencies)

    def lock_inputs(self) -> dict:
        """What determines this distribution's lock (not notebooks, apt or hub)."""
        return {
            "channels": list(self.channels),
            "platforms": list(self.platforms),
            "constraints": sorted(self.constraints),
            "pip": sorted(self.pip_constraints or self.pip),
            "virtual_packages": dict(sorted(self.virtual_packages.items())),
        } | ({"pip_python": self.pip_python} if self.pip_python else {})

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
        if self.pip_python:
            out["pip_python"] = self.pip_python
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
            out["hub"] = self.hub.dump(exclude_defaults=True)
        out["inherits_from"] = list(self.chain[:-1])
        return out


def _refuse_contradiction(new: str, chain: list[str], owner_of, where, rules, what: str) -> None:
    """``new`` may narrow each requirement of the chain on its package, never contradict
    one, nor leave none satisfiable with all of them. ``rules``: a module with
    ``compatible`` and ``compatible_all`` (matchspec for conda, pep508 for pip)."""
    file, field = where
    for c in chain:
        if not rules.compatible(c, new):
            raise SpecError(
                f"{new!r} contradicts {c!r} from {owner_of(c)}; a child may narrow a "
                f"parent's {what} but not contradict it",
                file=file,
                field=field,
            )
    if len(chain) > 1 and not rules.compatible_all([*chain, new]):
        owners = sorted({owner_of(c) for c in chain})
        raise SpecError(
            f"{new!r} leaves no version that also satisfies "
            f"{', '.join(repr(c) for c in chain)} (from {', '.join(owners)})",
            file=file,
            field=field,
        )


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
        pip_constraints: list[str] = []
        pip_origins: dict[str, tuple[str, str]] = {}
        pip_python = spec.pip_python
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
        pip = {pep508.name(r): r for r in parent.pip}
        pip_constraints = list(parent.pip_constraints)
        pip_origins = dict(parent.pip_origins)
        pip_python = spec.pip_python or parent.pip_python
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

            def owner_of(c: str, name=name) -> str:
                return constraint_origins.get(c, parent.origins.get(name, parent.spec_files[-1]))

            _refuse_contradiction(
                dep, chain_specs, owner_of, (spec_file, f"dependencies[{i}]"), matchspec, "spec"
            )
        deps[name] = dep
        origins[name] = spec_file
        if dep not in constraints:
            constraints.append(dep)
            constraint_origins.setdefault(dep, spec_file)
            constraint_fields.setdefault(dep, f"dependencies[{i}]")
    for i, req in enumerate(spec.pip):
        name = pep508.name(req)
        chain_reqs = [c for c in pip_constraints if pep508.name(c) == name]
        _refuse_contradiction(
            req,
            chain_reqs,
            lambda c: pip_origins.get(c, (spec_file, ""))[0],
            (spec_file, f"pip[{i}]"),
            pep508,
            "pip requirement",
        )
        pip[name] = req
        if req not in pip_constraints:
            pip_constraints.append(req)
            pip_origins.setdefault(req, (spec_file, f"pip[{i}]"))
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
        pip_python=pip_python,
        pip_constraints=tuple(pip_constraints),
        pip_origins=pip_origins,
    )
