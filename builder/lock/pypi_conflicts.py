"""A failed PyPI step in the words of the spec: which requirement, and why.

uv explains a failed resolution in sentences ("Because you require numpy>=2.3 and
numpy==2.2.6, we can conclude ..."). Each failure becomes one ``LockError`` naming the
spec file and ``pip[N]`` of the requirement at fault, in one of four kinds: the index
does not answer, only an sdist exists (and ``--allow-sdist`` is not given), a
conda-locked package stands in the way (both are named), or nothing satisfies it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from builder.errors import LockError
from builder.lock.pypi_names import Provided
from builder.spec import Distribution, pep508

_NETWORK = re.compile(
    r"Failed to fetch|error sending request|Connection refused|dns error|timed out|"
    r"Request failed after|failed to lookup address",
    re.IGNORECASE,
)
_SDIST = re.compile(
    r"(?:Because |and )(?P<name>[A-Za-z0-9][\w.-]*)(?:==(?P<version>\S+?))? has no usable wheels"
)
_REQUIRED = re.compile(r"you require (?P<name>[A-Za-z0-9][\w.-]*)")
_FETCH_URL = re.compile(r"/simple/(?P<name>[^/\s]+)/")


@dataclass(frozen=True)
class Failure:
    """What the PyPI step tried: for whom, where, on which index."""

    dist: Distribution
    platform: str
    python: str
    index: str
    provided: dict[str, Provided]


def reason(stderr: str) -> str:
    """uv's explanation on one line: its ``cause:`` sentences (hints left out)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    causes: list[str] = []
    in_cause = False
    for ln in lines:
        if ln.startswith("hint:"):
            in_cause = False
        elif ln.startswith("cause:"):
            in_cause = True
            causes.append(ln.removeprefix("cause:").strip())
        elif in_cause:
            causes[-1] += " " + ln
    text = " ".join(causes) if causes else (lines[-1] if lines else "uv failed")
    return text.removeprefix("error: ")


def requirement_of(dist: Distribution, names: list[str]) -> tuple[str, str, str]:
    """(requirement, file, field) of the first of ``names`` the spec asks for."""
    reqs = list(dist.pip_constraints or dist.pip)
    by_name = {}
    for req in reversed(reqs):  # the child's (last) form of a name wins
        by_name[pep508.name(req)] = req
    for name in names:
        req = by_name.get(canonicalize_name(name))
        if req is not None:
            break
    else:
        req = reqs[0]
    file, field = dist.pip_origins.get(req, (dist.spec_files[-1], "pip"))
    return req, file, field


def explain(stderr: str, failed: Failure) -> LockError:
    """The LockError for a failed ``uv pip compile``."""
    why = reason(stderr)
    where = f"on {failed.platform} (Python {failed.python})"
    required = [m.group("name") for m in _REQUIRED.finditer(why)]
    if _NETWORK.search(stderr) and "No solution found" not in stderr:
        fetched = [m.group("name") for m in _FETCH_URL.finditer(stderr)]
        req, file, field = requirement_of(failed.dist, fetched)
        return LockError(
            f"{req!r}: the PyPI index {failed.index} does not answer: {_last_cause(stderr)}",
            file=file,
            field=field,
        )
    sdist = _SDIST.search(why)
    if sdist and ("building from source is disabled" in stderr or "--no-build" in stderr):
        name, version = sdist.group("name"), sdist.group("version")
        req, file, field = requirement_of(failed.dist, [name, *required])
        what = f"{name} {version}" if version else name
        return LockError(
            f"{req!r}: {what} has no wheel for {failed.platform} (Python {failed.python}), only "
            "a source distribution; a lock must install without a compiler "
            "(--allow-sdist locks the sdist anyway)",
            file=file,
            field=field,
        )
    conda = [
        p
        for name, p in failed.provided.items()
        if re.search(rf"(?<![\w.-]){re.escape(name)}(?=[<>=!~])", why)
    ]
    if conda:
        req, file, field = requirement_of(failed.dist, required)
        held = ", ".join(f"{p.conda.name} {p.conda.version}" for p in conda)
        return LockError(
            f"{req!r} conflicts with the conda lock {where}: conda installs {held}, which "
            f"the PyPI step may not replace ({why})",
            file=file,
            field=field,
        )
    req, file, field = requirement_of(failed.dist, required)
    return LockError(f"{req!r} cannot be resolved {where}: {why}", file=file, field=field)


def _last_cause(stderr: str) -> str:
    causes = [
        ln.strip().removeprefix("cause:").strip() for ln in stderr.splitlines() if "cause:" in ln
    ]
    return causes[-1] if causes else reason(stderr)


def version_conflict(failed: Failure, name: str, version: str) -> LockError:
    """uv chose ``name version``, which conda installs at another version."""
    p = failed.provided[name]
    req, file, field = requirement_of(failed.dist, [])
    return LockError(
        f"{req!r} conflicts with the conda lock on {failed.platform}: it needs {name} {version} "
        f"from PyPI, but conda installs {p.conda.name} {p.conda.version}",
        file=file,
        field=field,
    )
