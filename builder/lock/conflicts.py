"""Solver conflicts in the words of the specs: which packages clash, and which spec files
(distribution and field) asked for them.

rattler explains a failed solve as a tree::

    app * cannot be installed because there are no viable options:
    └─ app 1.0.0 would require
       └─ lib >=0.9, which cannot be installed because there are no viable options:
          └─ lib 1.0.0 would require
             └─ py >=3.12, for which no candidates were found.

The leaves (no candidates, conflicts with the versions above, locked or pinned) are the
clashing requirements; the top of each branch is a spec of ours. Both are mapped back to
the spec file and field that declared them.
"""

from __future__ import annotations

import re

from builder.spec import matchspec

_LEAF = re.compile(
    r"^(?P<spec>.+?)(?:,| is| which)\s*(?:for which no candidates were found|"
    r"which conflicts with the versions reported above|"
    r"conflicts with the versions reported above|is locked|is pinned|"
    r"which cannot be installed because it is (?:locked|pinned))"
)
_REQUIRE = re.compile(r"^(?P<spec>.+?), which (?:cannot be installed|can be installed)")
_ROOT = re.compile(r"^(?:Cannot solve the request because of: )?(?P<spec>.+?) cannot be installed")
MAX_CLAUSES = 3


def _lines(text: str) -> list[tuple[int, str]]:
    """(depth, text) of each line of rattler's tree."""
    out = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        body = raw.lstrip(" │├└─\t")
        out.append((len(raw) - len(body), body.strip()))
    return out


def _name(spec: str) -> str | None:
    try:
        return matchspec.package_name(spec.strip())
    except ValueError:
        head = spec.strip().split()
        return head[0] if head else None


class _Origins:
    """Where each package's constraints come from, over the members of a solve."""

    def __init__(self, members):
        self.by_name: dict[str, list[str]] = {}
        for m in members:
            for c in m.constraints:
                where = f"{m.constraint_origins.get(c, m.spec_files[-1])}: "
                where += m.constraint_fields.get(c, "dependencies")
                entry = f"{c!r} ({where})"
                names = self.by_name.setdefault(_name(c) or c, [])
                if entry not in names:
                    names.append(entry)
        self.virtual = {k: v for m in members for k, v in m.virtual_packages.items()}
        self.files = {m.name: m.spec_files[-1] for m in members}

    def of(self, name: str | None) -> str | None:
        entries = self.by_name.get(name or "")
        return " and ".join(entries) if entries else None


def explain(text: str, members, specs_override=None) -> str | None:
    """A short account of a failed solve, or None when rattler's text is not a tree."""
    lines = _lines(text)
    if not lines:
        return None
    origins = _Origins(members)
    extra = {(_name(s) or s): s for s in specs_override or ()}
    clauses: list[str] = []
    seen: set[tuple] = set()  # (asking package, clashing package): one clause each
    root: str | None = None
    via: list[tuple[int, str]] = []  # the requirement chain above the current line
    for depth, body in lines:
        m = _ROOT.match(body)
        if m and depth == 0:
            root, via = m.group("spec").strip(), []
            continue
        via = [(d, s) for d, s in via if d < depth]
        leaf = _LEAF.match(body)
        if leaf:
            spec = leaf.group("spec").strip()
            key = (_name(root) if root else None, _name(spec))
            clause = _clause(root, spec, [s for _, s in via], origins, extra)
            if clause and key not in seen:
                seen.add(key)
                clauses.append(clause)
            continue
        req = _REQUIRE.match(body)
        if req:
            via.append((depth, req.group("spec").strip()))
    if not clauses:
        return None
    more = len(clauses) - MAX_CLAUSES
    shown = clauses[:MAX_CLAUSES] + ([f"and {more} more clash(es)"] if more > 0 else [])
    return "; ".join(shown)


def _clause(root, leaf: str, via: list[str], origins: _Origins, extra) -> str | None:
    leaf_name = _name(leaf)
    root_name = _name(root) if root else None
    asker = origins.of(root_name) or (
        f"{extra[root_name]!r} (the bump)" if root_name in extra else None
    )
    chain = [v for v in via if _name(v) not in (root_name, leaf_name)]
    through = f" (through {', '.join(chain)})" if chain else ""
    if leaf_name and leaf_name.startswith("__"):
        have = origins.virtual.get(leaf_name)
        machine = f"{leaf_name} {have} (virtual_packages)" if have else f"no {leaf_name}"
        return f"{asker or root} needs {leaf}{through}, but the target machine has {machine}"
    holder = origins.of(leaf_name) if leaf_name != root_name else None
    if root_name == leaf_name or not root:
        return f"{origins.of(leaf_name) or leaf}: no package satisfies it on this platform"
    if holder:
        return f"{asker or root} needs {leaf}{through}, which clashes with {holder}"
    return f"{asker or root} needs {leaf}{through}, which no available {leaf_name} satisfies"
