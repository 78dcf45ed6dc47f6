"""Conda match specs: parsing with rattler, and the narrowing rule of layering.

A child distribution may narrow a parent's spec (``xarray`` -> ``xarray >=2025.1``) but not
contradict it (``python 3.11.*`` under a parent's ``python 3.12.*``). Deciding whether two
version specs intersect is done by probing: every version literal of either spec, and
versions just around it, is tested against both specs with rattler's own matcher.
"""

from __future__ import annotations

import re

import rattler

_VERSION_LITERAL = re.compile(r"[0-9][0-9A-Za-z._+!]*")


def parse(spec: str) -> rattler.MatchSpec:
    """Parse a conda match spec; raises ValueError with rattler's reason."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("empty match spec")
    try:
        parsed = rattler.MatchSpec(spec)
    except Exception as exc:  # rattler raises its own InvalidMatchSpecError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"invalid match spec {spec!r}: {reason}") from None
    if parsed.build and any(c.isspace() for c in parsed.build):
        # rattler takes all the rest as a build string, e.g. a mis-indented YAML item
        # folded into the line above: "python=3.12 - numpy"
        raise ValueError(
            f"invalid match spec {spec!r}: unexpected {parsed.build!r} after the version"
        )
    return parsed


def package_name(spec: str) -> str:
    return parse(spec).name.normalized


def _probes(literal: str) -> list[str]:
    """Versions at and just around a literal, to find a point inside an intersection."""
    literal = literal.rstrip(".*")
    parts = literal.split(".")
    out = [literal, f"{literal}.0.1", f"{literal}.99999"]
    if parts[-1].isdigit():
        up = [*parts[:-1], str(int(parts[-1]) + 1)]
        out += [".".join(up), ".".join(up) + ".0.1"]
        if int(parts[-1]) > 0:
            down = [*parts[:-1], str(int(parts[-1]) - 1)]
            out += [".".join(down) + ".99999"]
    if len(parts) > 1 and parts[0].isdigit():
        out += [f"{int(parts[0]) + 1}", f"{parts[0]}.99999"]
    return out


def _version_candidates(*version_texts: str) -> list[rattler.Version]:
    seen, versions = set(), []
    for text in version_texts:
        for literal in _VERSION_LITERAL.findall(text or ""):
            for probe in _probes(literal):
                if probe in seen:
                    continue
                seen.add(probe)
                try:
                    versions.append(rattler.Version(probe))
                except Exception:
                    continue
    versions.append(rattler.Version("0"))
    return versions


def _version_spec(text: str | None):
    if not text or text.strip() in ("*", ""):
        return None
    return rattler.VersionSpec(text)


def _globs_intersect(a: str, b: str) -> bool:
    """True when some build string matches both ``*`` globs (``cuda*`` and ``*py312*`` do:
    ``cuda126_py312_0``). Walks the product of the two patterns' automata."""
    todo, seen = [(0, 0)], set()
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        ca, cb = a[i : i + 1], b[j : j + 1]
        if ca == "*":
            todo.append((i + 1, j))  # a's star stops
            if cb and cb != "*":
                todo.append((i, j + 1))  # a's star eats b's literal
        if cb == "*":
            todo.append((i, j + 1))
            if ca and ca != "*":
                todo.append((i + 1, j))
        if ca and ca == cb and ca != "*":
            todo.append((i + 1, j + 1))
    return False


def compatible(parent: str, child: str) -> bool:
    """True when some package could satisfy both specs (so the child only narrows)."""
    a, b = parse(parent), parse(child)
    a_ver, b_ver = _version_spec(a.version), _version_spec(b.version)
    if a_ver is not None and b_ver is not None:
        candidates = _version_candidates(a.version, b.version)
        if not any(a_ver.matches(v) and b_ver.matches(v) for v in candidates):
            return False
    a_build, b_build = a.build, b.build
    if a_build and b_build and not _globs_intersect(a_build, b_build):
        return False
    return not (a.channel and b.channel and a.channel.name != b.channel.name)


def compatible_all(specs: list[str]) -> bool:
    """True when some package could satisfy every spec at once (with ``|`` or ``!=`` in
    them, specs that agree two by two may still leave no version for all together)."""
    parsed = [parse(s) for s in specs]
    versions = [_version_spec(p.version) for p in parsed]
    versions = [v for v in versions if v is not None]
    if len(versions) > 1:
        candidates = _version_candidates(*(p.version for p in parsed if p.version))
        if not any(all(v.matches(c) for v in versions) for c in candidates):
            return False
    return all(compatible(a, b) for i, a in enumerate(specs) for b in specs[i + 1 :])
