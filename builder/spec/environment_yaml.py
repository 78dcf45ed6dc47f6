"""The environment.yml format (conda / repo2docker / binder / conda-lock): reading it, and
turning one into a distribution with ``scistacks new``.

Every file conda and conda-lock accept imports: conda's ``nodefaults`` pseudo-channel
(dropped: a distribution lists its channels exactly), ``channel::package``,
``name=version`` and ``name==version`` pins, ``pip:`` sections (PEP 508 requirements;
``python`` is added when the file lists none, since the lock targets the conda-locked
Python), conda-lock's ``platforms:`` key and its ``# [linux64]`` selectors.

An import is validated completely before anything is written, and every problem names the
environment.yml (and its field), never the spec it would have become.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from builder.errors import SpecError
from builder.fsutil import write_atomic
from builder.project import SPEC_FILE, Project
from builder.spec import matchspec
from builder.spec.loader import check_dependency, check_pip_requirement
from builder.spec.selectors import selected_platforms
from builder.yamlio import load_yaml

_KNOWN_KEYS = {"name", "channels", "dependencies", "prefix", "variables", "platforms"}
PSEUDO_CHANNELS = {"nodefaults"}  # conda: "do not add the default channels"


@dataclass
class Dependency:
    spec: str
    field: str  # where it is in the environment.yml, e.g. dependencies[3]
    selector: str | None = None  # conda-lock's "# [linux64]"


@dataclass
class EnvironmentFile:
    shown: str
    channels: list[str]
    dependencies: list[Dependency]
    pip: list[tuple[str, str]]  # (requirement, field)
    platforms: list[str] | None = None
    channel_fields: dict[str, str] = field(default_factory=dict)


def _selectors(text: str) -> dict[int, str]:
    """Line number (0-based) -> selector text, for list items ending in ``# [...]``."""
    out = {}
    for i, line in enumerate(text.splitlines()):
        m = re.search(r"#\s*\[([^\]]*)\]\s*$", line)
        if m and line.lstrip().startswith("-"):
            out[i] = m.group(1).strip()
    return out


def _item_lines(text: str) -> list[int | None]:
    """The line of each item of the top-level ``dependencies`` list (None if unknown)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        is_deps = isinstance(key, yaml.ScalarNode) and key.value == "dependencies"
        if is_deps and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line for item in value.value]
    return []


def read_environment_file(path: Path) -> EnvironmentFile:
    """Read and check an environment.yml; every problem names it and its field."""
    shown = str(path)
    data = load_yaml(path, shown_as=shown, error=SpecError)
    if not isinstance(data, dict):
        raise SpecError("expected an environment.yml mapping with 'dependencies'", file=shown)
    unknown = sorted((str(k) for k in set(data) - _KNOWN_KEYS), key=str)
    if unknown:
        raise SpecError("unknown key in an environment.yml", file=shown, field=unknown[0])
    channels_in = data.get("channels") or []
    if not isinstance(channels_in, list) or not all(isinstance(c, str) for c in channels_in):
        raise SpecError("expected a list of channel names", file=shown, field="channels")
    channels: list[str] = []
    channel_fields: dict[str, str] = {}
    for i, c in enumerate(channels_in):
        c = c.strip()
        if c in PSEUDO_CHANNELS or not c or c in channels:
            continue
        channels.append(c)
        channel_fields[c] = f"channels[{i}]"
    platforms = data.get("platforms")
    if platforms is not None:
        from builder.project import KNOWN_PLATFORMS

        if not isinstance(platforms, list) or not platforms:
            raise SpecError("expected a list of platforms", file=shown, field="platforms")
        for i, p in enumerate(platforms):
            if p not in KNOWN_PLATFORMS:
                raise SpecError(
                    f"unknown platform {p!r} (expected one of {', '.join(KNOWN_PLATFORMS)})",
                    file=shown,
                    field=f"platforms[{i}]",
                )
        if len(set(platforms)) != len(platforms):
            raise SpecError("a platform is listed twice", file=shown, field="platforms")
    deps_in = data.get("dependencies")
    if not isinstance(deps_in, list):
        raise SpecError("expected a list", file=shown, field="dependencies")
    text = path.read_text(encoding="utf-8")
    lines, selectors = _item_lines(text), _selectors(text)
    deps: list[Dependency] = []
    pip: list[tuple[str, str]] = []
    for i, dep in enumerate(deps_in):
        where = f"dependencies[{i}]"
        if isinstance(dep, dict) and set(dep) == {"pip"}:
            if not isinstance(dep["pip"], list):
                raise SpecError(
                    "expected a list of pip requirements", file=shown, field=f"{where}.pip"
                )
            for k, req in enumerate(dep["pip"]):  # name this file, not the spec made from it
                if not isinstance(req, str):
                    raise SpecError(
                        "expected a pip requirement string", file=shown, field=f"{where}.pip[{k}]"
                    )
                check_pip_requirement(req, shown, f"{where}.pip[{k}]")
                pip.append((req, f"{where}.pip[{k}]"))
            continue
        if not isinstance(dep, str):
            raise SpecError(
                "expected a match spec string or a 'pip:' list", file=shown, field=where
            )
        line = lines[i] if i < len(lines) else None
        deps.append(
            Dependency(dep.strip(), where, selectors.get(line) if line is not None else None)
        )
    for d in deps:
        check_dependency(d.spec, shown, d.field)
    return EnvironmentFile(shown, channels, deps, pip, platforms, channel_fields)


def read_environment(path: Path) -> tuple[list[str], list[str], list[str]]:
    """(channels, conda dependencies, pip requirements) of an environment.yml."""
    env = read_environment_file(path)
    return env.channels, [d.spec for d in env.dependencies], [r for r, _ in env.pip]


def _spec_from(env: EnvironmentFile, name: str, source: Path, parent, platforms):
    """The distribution.yml mapping, and for each of its fields the environment.yml's."""
    fields: dict[str, str] = {}
    deps: list[Dependency] = []
    for d in env.dependencies:
        if d.selector is not None:
            wanted = selected_platforms(d.selector, platforms, env.shown, d.field)
            if not wanted:
                continue  # for none of the platforms imported
            if set(wanted) != set(platforms):
                raise SpecError(
                    f"selector [{d.selector}] applies on {', '.join(wanted)} only, but a "
                    f"distribution's dependencies apply on all its platforms "
                    f"({', '.join(platforms)}); import it into a child distribution with "
                    f"platforms: [{', '.join(wanted)}]",
                    file=env.shown,
                    field=d.field,
                )
        deps.append(d)
    channels = list(env.channels)
    for d in deps:  # channel::package needs that channel
        channel = matchspec.parse(d.spec).channel
        if channel is not None and channel.name not in channels:
            channels.append(channel.name)
            env.channel_fields.setdefault(channel.name, d.field)
    pip = list(env.pip)
    provided_channels: list[str] = []
    if parent is not None:
        provided = {matchspec.package_name(s): s for s in parent.dependencies}
        kept = []
        for d in deps:
            pname = matchspec.package_name(d.spec)
            if d.spec in parent.dependencies or (pname in provided and d.spec == pname):
                continue  # a bare name the parent already lists adds nothing
            for constraint in parent.constraints:
                if matchspec.package_name(constraint) == pname and not matchspec.compatible(
                    constraint, d.spec
                ):
                    owner = parent.origins.get(pname, parent.spec_files[-1])
                    raise SpecError(
                        f"{d.spec!r} contradicts {constraint!r} of parent {parent.name!r} "
                        f"({owner})",
                        file=env.shown,
                        field=d.field,
                    )
            kept.append(d)
        deps = kept
        provided_pip = {p.lower() for p in parent.pip}
        pip = [(r, f) for r, f in pip if r.lower() not in provided_pip]
        provided_channels = list(parent.channels)
    has_python = any(matchspec.package_name(d.spec) == "python" for d in deps) or (
        parent is not None and ("python" in parent.direct_names or parent.pip_python)
    )
    if pip and not has_python:
        # the PyPI packages are locked for the conda-locked Python: a pip section needs one
        deps.append(Dependency("python", pip[0][1]))
    spec: dict = {"name": name, "description": f"Imported from {source.name}"}
    if parent is not None:
        spec["extends"] = parent.name
    new_channels = [c for c in channels if c not in provided_channels]
    if new_channels or parent is None:
        spec["channels"] = new_channels or ["conda-forge"]
        for i, c in enumerate(spec["channels"]):
            fields[f"channels[{i}]"] = env.channel_fields.get(c, "channels")
    if env.platforms is not None and (parent is None or list(parent.platforms) != env.platforms):
        spec["platforms"] = list(env.platforms)
        fields["platforms"] = "platforms"
    spec["dependencies"] = [d.spec for d in deps]
    for i, d in enumerate(deps):
        fields[f"dependencies[{i}]"] = d.field
    if pip:
        spec["pip"] = [r for r, _ in pip]
        for i, (_, f) in enumerate(pip):
            fields[f"pip[{i}]"] = f
    return spec, fields


def new_distribution(
    project: Project, name: str, source: Path, *, parent: str | None, force: bool
) -> Path:
    """Write distributions/NAME/distribution.yml from an environment.yml.

    Nothing is written (and nothing existing is touched) unless the import is valid; the
    file is written through a temp file (a new folder through a temp folder) and a rename.
    """
    from builder.project import DEFAULT_PLATFORMS
    from builder.spec import Catalog
    from builder.spec.layering import merge
    from builder.spec.loader import parse_spec
    from builder.spec.models import NAME_RE

    if not NAME_RE.match(name):
        raise SpecError(f"{name!r} is not a valid distribution name", field="NAME")
    target = project.spec_path(name)
    shown_target = project.relative(target)
    if (target.exists() or target.is_symlink()) and not force:
        raise SpecError("distribution exists already (use --force)", file=shown_target)
    env = read_environment_file(source)
    before: list[SpecError] = []  # problems the project has already are not this import's
    catalog = Catalog.load(project, collect=before)
    parent_dist = catalog.get(parent) if parent else None
    if parent_dist is not None and parent_dist.name == name:
        raise SpecError(f"a distribution cannot extend itself ({name!r})", field="--extends")
    platforms = list(env.platforms or (parent_dist.platforms if parent_dist else DEFAULT_PLATFORMS))
    spec, fields = _spec_from(env, name, source, parent_dist, platforms)
    text = yaml.safe_dump(spec, sort_keys=False)

    # 1. the spec alone, in a scratch folder: its problems name the environment.yml
    with tempfile.TemporaryDirectory(prefix="scistacks-new-") as tmp:
        scratch = Path(tmp, name, SPEC_FILE)
        scratch.parent.mkdir()
        scratch.write_text(text, encoding="utf-8")
        try:
            merge(parent_dist, parse_spec(scratch, env.shown), env.shown)
        except SpecError as exc:
            raise SpecError(
                exc.message, file=env.shown, field=fields.get(exc.field or "", exc.field)
            ) from None

    # 2. write it, then check the whole catalog (children of a replaced distribution)
    old = target.read_bytes() if target.is_file() else None
    created = not target.parent.exists()
    if created:
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=project.distributions_dir))
        try:
            write_atomic(staging / SPEC_FILE, text)
            os.rename(staging, target.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    else:
        if target.is_symlink() and not target.exists():
            target.unlink()  # --force over a dangling link
        write_atomic(target, text)
    try:
        after: list[SpecError] = []
        Catalog.load(project, collect=after).get(name)
        known = {str(p) for p in before}
        new = [p for p in after if str(p) not in known]
        if new:
            raise new[0]
    except BaseException:
        if created:
            shutil.rmtree(target.parent, ignore_errors=True)
        elif old is not None:
            write_atomic(target, old)
        else:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
        raise
    return target
