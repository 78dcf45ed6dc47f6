"""From ``distribution.yml`` files to validated ``DistributionSpec`` models."""

from __future__ import annotations

import os
import re
from pathlib import Path

from builder.errors import SpecError
from builder.spec import matchspec
from builder.spec.models import DistributionSpec
from builder.spec.schema import Invalid, Problem
from builder.yamlio import load_yaml


def _field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _explain(problem: Problem) -> str:
    if problem.kind == "literal" and "platforms" in problem.loc:
        return f"unknown platform {problem.input!r} ({problem.msg})"
    return problem.msg


def check_dependency(dep, shown: str, field: str) -> str:
    """A conda dependency of a spec or an environment.yml; returns its package name."""
    try:
        parsed = matchspec.parse(dep)
    except ValueError as exc:
        raise SpecError(str(exc), file=shown, field=field) from None
    if parsed.name.normalized.startswith("__"):
        raise SpecError(
            f"{dep!r} is a virtual package: declare it under virtual_packages",
            file=shown,
            field=field,
        )
    return parsed.name.normalized


def _dangling(path: Path, shown: str) -> None:
    """A spec that is a symbolic link to nothing is an error, not a missing distribution."""
    for link in (path, path.parent):
        if link.is_symlink() and not link.exists():
            raise SpecError(
                f"a symbolic link to {os.readlink(link)!r}, which does not exist",
                file=shown if link == path else str(Path(shown).parent),
            )


def parse_spec(path: Path, shown: str, *, files: bool = False) -> DistributionSpec:
    """One spec, validated. ``files``: also check that its notebooks exist (validate)."""
    _dangling(path, shown)
    data = load_yaml(path, shown_as=shown, error=SpecError)
    if data is None:
        raise SpecError("empty file: expected a mapping with at least 'name'", file=shown)
    if not isinstance(data, dict):
        raise SpecError(
            f"expected a mapping at the top level, found a {type(data).__name__}", file=shown
        )
    try:
        spec = DistributionSpec.validate(data)
    except Invalid as exc:
        errors = exc.errors()
        # report the most useful error: unknown keys and missing fields first
        errors.sort(key=lambda e: (e.kind not in ("unknown", "missing"), len(e.loc)))
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SpecError(_explain(first) + more, file=shown, field=_field_path(first.loc)) from None
    expected = path.parent.name
    if spec.name != expected:
        raise SpecError(
            f"name {spec.name!r} does not match its folder {expected!r}", file=shown, field="name"
        )
    for i, channel in enumerate(spec.channels):
        _check_channel(channel, shown, f"channels[{i}]")
    names = [
        check_dependency(dep, shown, f"dependencies[{i}]")
        for i, dep in enumerate(spec.dependencies)
    ]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise SpecError(f"{name!r} is listed twice", file=shown, field=f"dependencies[{i}]")
    for key, value in spec.virtual_packages.items():
        _check_virtual(key, value, shown)
    pip_names = [check_pip_requirement(req, shown, f"pip[{i}]") for i, req in enumerate(spec.pip)]
    for i, name in enumerate(pip_names):
        if name in pip_names[:i]:
            raise SpecError(f"{name!r} is listed twice", file=shown, field=f"pip[{i}]")
    for key in ("post_build", "start"):
        script = getattr(spec, key)
        if script is not None and not (path.parent / script).is_file():
            raise SpecError(f"script {script!r} not found next to the spec", file=shown, field=key)
    for i, nb in enumerate(spec.notebooks):
        nb_path = nb if isinstance(nb, str) else nb.path
        if not nb_path.endswith(".ipynb"):
            raise SpecError(
                f"{nb_path!r} is not a .ipynb notebook", file=shown, field=f"notebooks[{i}]"
            )
    for i, nb in enumerate(spec.notebooks if files else ()):
        nb_path = nb if isinstance(nb, str) else nb.path
        if not (path.parent / nb_path).is_file():
            raise SpecError(
                f"notebook {nb_path!r} not found next to the spec",
                file=shown,
                field=f"notebooks[{i}]",
            )
    return spec


def _check_channel(channel: str, shown: str, field: str) -> None:
    """What locking would refuse: no name, conda's nodefaults pseudo-channel, or no channel."""
    text = channel.strip()
    if text == "nodefaults":
        raise SpecError(
            f"{text!r} is not a channel a lock can read; list the channels themselves",
            file=shown,
            field=field,
        )
    import rattler

    try:
        if not text or any(c.isspace() for c in text):
            raise ValueError("empty or contains spaces")
        rattler.Channel(text)
    except Exception as exc:
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise SpecError(f"invalid channel {channel!r}: {reason}", file=shown, field=field) from None


KNOWN_VIRTUAL = ("__glibc", "__linux", "__cuda", "__unix", "__archspec", "__osx", "__win")


def _check_virtual(key: str, value: str, shown: str) -> None:
    field = f"virtual_packages.{key}"
    if key not in KNOWN_VIRTUAL:
        raise SpecError(
            f"unknown virtual package {key!r} (known: {', '.join(KNOWN_VIRTUAL)})",
            file=shown,
            field=field,
        )
    text = str(value).strip()
    if re.search(r"[<>=!~*,|\s]", text):
        raise SpecError(
            f"{text!r}: a virtual package takes the version the target machine has "
            "(e.g. 12.0), not a range",
            file=shown,
            field=field,
        )
    import rattler

    try:
        rattler.Version(text)
    except Exception:
        raise SpecError(f"{text!r} is not a version", file=shown, field=field) from None


def check_pip_requirement(req: str, shown: str, field: str) -> str:
    """A PEP 508 requirement (the lock resolves it); returns its normalised name."""
    from builder.spec import pep508

    if not isinstance(req, str):
        raise SpecError("expected a pip requirement string", file=shown, field=field)
    try:
        return pep508.name(req)
    except ValueError as exc:
        raise SpecError(str(exc), file=shown, field=field) from None
