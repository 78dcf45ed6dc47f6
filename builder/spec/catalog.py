"""Stage 1: spec. Reads ``distributions/*/distribution.yml``, writes nothing: the
``Catalog`` of effective ``Distribution``s every later stage receives.

``Catalog.load(project)`` validates every spec, resolves ``extends`` chains and gives the
effective ``Distribution`` of each, in dependency order.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.errors import SpecError
from builder.project import Project
from builder.spec.layering import Distribution, merge
from builder.spec.loader import parse_spec
from builder.spec.models import DistributionSpec


@dataclass
class Catalog:
    project: Project
    specs: dict[str, DistributionSpec]
    distributions: dict[str, Distribution]

    @classmethod
    def load(
        cls, project: Project, *, collect: list[SpecError] | None = None, files: bool = False
    ) -> Catalog:
        """Load every spec. With ``collect``, problems are appended and loading goes on
        (for ``validate``); otherwise the first problem is raised. ``files``: also check
        the files specs name that no lock needs (notebooks)."""

        def fail(exc: SpecError):
            if collect is None:
                raise exc
            collect.append(exc)

        specs: dict[str, DistributionSpec] = {}
        for name in project.distribution_names():
            path = project.spec_path(name)
            try:
                specs[name] = parse_spec(path, project.relative(path), files=files)
            except SpecError as exc:
                fail(exc)

        distributions: dict[str, Distribution] = {}
        broken: set[str] = set(project.distribution_names()) - set(specs)

        def resolve(name: str, trail: tuple[str, ...]) -> Distribution | None:
            if name in distributions:
                return distributions[name]
            if name in broken:
                return None
            spec = specs[name]
            shown = project.relative(project.spec_path(name))
            parent = None
            if spec.extends is not None:
                if spec.extends in trail or spec.extends == name:
                    loop = [*trail, name]
                    cycle = " -> ".join([*loop[loop.index(spec.extends) :], spec.extends])
                    raise SpecError(f"extends cycle: {cycle}", file=shown, field="extends")
                if spec.extends not in specs and spec.extends not in broken:
                    raise SpecError(
                        f"parent distribution {spec.extends!r} does not exist "
                        f"(no distributions/{spec.extends}/distribution.yml)",
                        file=shown,
                        field="extends",
                    )
                try:
                    parent = resolve(spec.extends, (*trail, name))
                except SpecError:
                    broken.add(spec.extends)  # every name on the failed chain: reported once
                    raise
                if parent is None:
                    return None  # the parent's own error is reported already
            dist = merge(parent, spec, shown)
            distributions[name] = dist
            return dist

        for name in specs:
            try:
                resolve(name, ())
            except SpecError as exc:
                broken.add(name)
                fail(exc)
        return cls(project, specs, distributions)

    def names(self) -> list[str]:
        """Every distribution, parents before children, then by name."""
        ordered: list[str] = []

        def visit(name: str):
            if name in ordered:
                return
            parent = self.distributions[name].parent
            if parent:
                visit(parent)
            ordered.append(name)

        for name in sorted(self.distributions):
            visit(name)
        return ordered

    def get(self, name: str) -> Distribution:
        try:
            return self.distributions[name]
        except KeyError:
            known = ", ".join(sorted(self.distributions)) or "none"
            raise SpecError(f"unknown distribution {name!r} (known: {known})") from None

    def select(self, names: tuple[str, ...] | list[str], all_: bool = False) -> list[str]:
        if all_ or not names:
            return self.names()
        for n in names:
            self.get(n)
        return [n for n in self.names() if n in names]

    def children(self, name: str) -> list[str]:
        return [n for n in self.names() if self.distributions[n].parent == name]

    def descendants(self, name: str) -> list[str]:
        return [n for n in self.names() if name in self.distributions[n].chain[:-1]]

    def solve_group(self, name: str) -> str:
        """The group a distribution is solved with: its own ``solve_group``, else its
        parent's group, else its own name (a family root)."""
        dist = self.get(name)
        if dist.solve_group:
            return dist.solve_group
        if dist.parent:
            return self.solve_group(dist.parent)
        return name

    def group_members(self, group: str) -> list[str]:
        return [n for n in self.names() if self.solve_group(n) == group]

    def groups(self) -> list[str]:
        out: list[str] = []
        for n in self.names():
            g = self.solve_group(n)
            if g not in out:
                out.append(g)
        return out
