"""PEP 508 requirements (a spec's ``pip:``): parsing, and the narrowing rule of layering.

The PyPI counterpart of ``matchspec``: a child may narrow a parent's requirement
(``nbgitpuller`` -> ``nbgitpuller >=1.2``) but not contradict it. Whether two specifier
sets intersect is decided by probing versions at and around every version they name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

# packaging is imported by the functions: most specs have no pip: section, and its
# parser is about a tenth of what a lock process spends importing.


def parse(req: str) -> Requirement:
    """A PEP 508 requirement; raises ValueError naming what is wrong."""
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(req, str) or not req.strip():
        raise ValueError("empty pip requirement")
    text = req.strip()
    if text.startswith("-"):
        raise ValueError(
            f"{req!r} is a pip option, not a requirement (a lock takes requirements only; "
            "the index is --pypi-index or [tool.scistacks] pypi-index)"
        )
    if text.startswith(("git+", "http://", "https://", "file:")):
        raise ValueError(f"{req!r} has no project name: write it as 'NAME @ {text}'")
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).strip().splitlines()[0]  # packaging adds the line and a caret
        raise ValueError(f"invalid pip requirement {req!r}: {reason}") from None


def name(req: str) -> str:
    """The PEP 503-normalised project name (``NBGitPuller`` -> ``nbgitpuller``)."""
    from packaging.utils import canonicalize_name

    return canonicalize_name(parse(req).name)


def _probes(spec: SpecifierSet) -> list[Version]:
    from packaging.version import InvalidVersion, Version

    out: list[Version] = []
    for s in spec:
        literal = s.version.removesuffix(".*")
        try:
            base = Version(literal)
        except InvalidVersion:
            continue
        release = list(base.release)
        candidates = [str(base), f"{literal}.0.1", f"{literal}.99999", f"{literal}.post1"]
        for i in range(len(release)):
            up = [*release[: i + 1]]
            up[-1] += 1
            candidates.append(".".join(map(str, up)))
            if release[i] > 0:
                down = [*release[: i + 1]]
                down[-1] -= 1
                candidates.append(".".join(map(str, down)) + ".99999")
        for c in candidates:
            try:
                out.append(Version(c))
            except InvalidVersion:
                continue
    return out


def _applies_together(a: Requirement, b: Requirement) -> bool:
    """Two requirements under different markers may never meet: no contradiction then."""
    return a.marker is None or b.marker is None or str(a.marker) == str(b.marker)


def compatible_all(reqs: list[str]) -> bool:
    """True when some version (and one URL) satisfies every requirement at once."""
    from packaging.version import Version

    parsed = [parse(r) for r in reqs]
    urls = {p.url for p in parsed if p.url}
    if len(urls) > 1:
        return False
    together = [p for p in parsed if all(_applies_together(p, q) for q in parsed)]
    specs = [p.specifier for p in together if str(p.specifier)]
    if len(specs) < 2:
        return True
    candidates = [Version("0"), Version("99999")]
    for s in specs:
        candidates += _probes(s)
    return any(all(s.contains(v, prereleases=True) for s in specs) for v in candidates)


def compatible(parent: str, child: str) -> bool:
    """True when the child's requirement only narrows the parent's."""
    return compatible_all([parent, child])
