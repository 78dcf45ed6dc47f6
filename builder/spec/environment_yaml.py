"""The environment.yml format (conda / repo2docker / binder): reading it, and turning one
into a distribution with ``scistacks new``."""

from __future__ import annotations

from pathlib import Path

import yaml

from builder.errors import SpecError
from builder.fsutil import write_atomic
from builder.project import Project
from builder.spec import matchspec
from builder.spec.loader import _check_pip_requirement
from builder.yamlio import load_yaml

_KNOWN_KEYS = {"name", "channels", "dependencies", "prefix", "variables"}


def read_environment(path: Path) -> tuple[list[str], list[str], list[str]]:
    """Return (channels, conda dependencies, pip requirements) of an environment.yml."""
    shown = str(path)
    data = load_yaml(path, shown_as=shown, error=SpecError)
    if not isinstance(data, dict):
        raise SpecError("expected an environment.yml mapping with 'dependencies'", file=shown)
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise SpecError("unknown key in an environment.yml", file=shown, field=str(unknown[0]))
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise SpecError("expected a list of channel names", file=shown, field="channels")
    deps_in = data.get("dependencies")
    if not isinstance(deps_in, list):
        raise SpecError("expected a list", file=shown, field="dependencies")
    deps, pip = [], []
    for i, dep in enumerate(deps_in):
        if isinstance(dep, dict) and set(dep) == {"pip"}:
            if not isinstance(dep["pip"], list):
                raise SpecError(
                    "expected a list of pip requirements",
                    file=shown,
                    field=f"dependencies[{i}].pip",
                )
            pip += [str(r) for r in dep["pip"]]
            for k, req in enumerate(dep["pip"]):  # name this file, not the spec made from it
                _check_pip_requirement(str(req), shown, f"dependencies[{i}].pip[{k}]")
            continue
        if not isinstance(dep, str):
            raise SpecError(
                "expected a match spec string or a 'pip:' list",
                file=shown,
                field=f"dependencies[{i}]",
            )
        # environment.yml allows "numpy=1.26" and "numpy==1.26"; rattler parses both
        try:
            matchspec.parse(dep)
        except ValueError as exc:
            raise SpecError(str(exc), file=shown, field=f"dependencies[{i}]") from None
        deps.append(dep)
    return channels, deps, pip


def new_distribution(
    project: Project, name: str, source: Path, *, parent: str | None, force: bool
) -> Path:
    from builder.spec import Catalog
    from builder.spec.models import NAME_RE

    if not NAME_RE.match(name):
        raise SpecError(f"{name!r} is not a valid distribution name", field="NAME")
    target = project.spec_path(name)
    if target.exists() and not force:
        raise SpecError("distribution exists already (use --force)", file=project.relative(target))
    channels, deps, pip = read_environment(source)
    provided_deps: set[str] = set()
    provided_pip: set[str] = set()
    provided_channels: list[str] = []
    if parent:
        dist = Catalog.load(project).get(parent)
        provided_deps = set(dist.dependencies)
        provided_names = {matchspec.package_name(d): d for d in dist.dependencies}
        provided_pip = {p.lower() for p in dist.pip}
        provided_channels = list(dist.channels)
        # a bare name the parent already lists adds nothing; a narrower spec stays
        deps = [
            d
            for d in deps
            if d not in provided_deps
            and not (
                matchspec.package_name(d) in provided_names
                and d.strip() == matchspec.package_name(d)
            )
        ]
        for d in deps:
            pname = matchspec.package_name(d)
            if pname in provided_names and not matchspec.compatible(provided_names[pname], d):
                raise SpecError(
                    f"{d!r} contradicts {provided_names[pname]!r} of parent {parent!r}",
                    file=str(source),
                    field="dependencies",
                )
        pip = [p for p in pip if p.lower() not in provided_pip]
    spec: dict = {"name": name, "description": f"Imported from {source.name}"}
    if parent:
        spec["extends"] = parent
    new_channels = [c for c in channels if c not in provided_channels]
    if new_channels or not parent:
        spec["channels"] = new_channels or ["conda-forge"]
    spec["dependencies"] = deps
    if pip:
        spec["pip"] = pip
    write_atomic(target, yaml.safe_dump(spec, sort_keys=False))
    # validate what we wrote, so a bad import never stays behind
    try:
        Catalog.load(project).get(name)
    except SpecError:
        target.unlink()
        if not any(target.parent.iterdir()):
            target.parent.rmdir()
        raise
    return target
