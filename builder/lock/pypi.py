"""The PyPI step of a lock: a distribution's ``pip:`` resolved with uv, per platform.

It runs after the conda solve, with the conda records of each platform:

- the target is the conda-locked Python (or ``pip_python``) on the platform's glibc
  (``virtual_packages.__glibc``): ``uv pip compile --python-version --python-platform``;
- the Python packages conda installs (``pypi_names``) are constraints (``NAME==VERSION``)
  and are served to uv from an index of their own, as metadata-only wheels, listed
  before the real index: uv takes them from there only, so their PyPI dependencies
  never enter the lock, and whatever needs another version of one is a conflict;
- a child keeps its parent's wheels (constraints) and a bump prefers the locked
  versions (an existing ``pylock.toml`` is what uv prefers);
- sdists are refused (``--no-build``) unless ``allow_sdist``; ``exclude_newer`` is uv's.

uv's pylock output names each package's files; the wheel with the best tag for the
target is locked, under the canonical index URL when the index is a mapped folder.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from builder.errors import LockError
from builder.fsutil import write_atomic
from builder.lock import pypi_conflicts, pypi_metadata, pypi_names, pypi_server
from builder.lock.model import LockedPackage, PypiPackage
from builder.lock.platforms import DEFAULTS
from builder.lock.pypi_index import PypiIndexMap, wheel_url
from builder.lock.pypi_metadata import Target
from builder.project import Project
from builder.spec import Catalog, Distribution, matchspec

# uv settings from the environment that would change what is resolved: the step names
# its index, constraints and options itself (cache, timeouts and TLS settings stay)
_UV_KEPT = (
    "UV_CACHE_DIR",
    "UV_HTTP_TIMEOUT",
    "UV_HTTP_RETRIES",
    "UV_NATIVE_TLS",
    "UV_INSECURE_HOST",
)
STUB_TIME = (1980, 1, 1, 0, 0, 0)  # before any --exclude-newer


@dataclass
class PypiSolve:
    """One distribution's pip requirements on one platform."""

    dist: Distribution
    platform: str
    conda: list[LockedPackage]  # the platform's conda lock of this distribution
    pinned: list[PypiPackage] = field(default_factory=list)  # the parent's wheels: kept
    preferred: list[PypiPackage] = field(default_factory=list)  # a bump's locked wheels
    upgrade: list[str] = field(default_factory=list)  # a bump's PEP 508 specs (NAME, NAME==V)


@dataclass(frozen=True)
class PypiOptions:
    index: PypiIndexMap
    exclude_newer: dt.datetime | None = None
    allow_sdist: bool = False
    metadata_cache: Path | None = None  # Project.pypi_metadata_cache: no refetch of a wheel's


def target(dist: Distribution, platform: str, conda: list[LockedPackage]) -> Target:
    """The Python and platform the distribution's PyPI packages install on."""
    python = next((p.version for p in conda if p.name == "python"), None)
    spec = dist.spec_files[-1]
    if python and dist.pip_python:
        raise LockError(
            f"conda locks python {python} on {platform}; pip_python is only for a "
            "distribution whose Python is not conda's (drop it)",
            file=spec,
            field="pip_python",
        )
    if not python and not dist.pip_python:
        raise LockError(
            "needs a Python to target: list python in dependencies, or give "
            'pip_python: "3.X" for the Python of the base image',
            file=spec,
            field="pip",
        )
    glibc = dist.virtual_packages.get("__glibc", DEFAULTS["linux"]["__glibc"])
    return Target(platform, python or dist.pip_python, str(glibc))


@functools.cache  # the same stand-ins serve every platform of a lock
def stub_wheel(name: str, version: str) -> tuple[str, bytes]:
    """A metadata-only wheel standing for a package conda installs (never installed)."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: scistacks\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}.dist-info/RECORD": "",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path, text in files.items():
            zf.writestr(zipfile.ZipInfo(path, STUB_TIME), text)
    return f"{dist}-py3-none-any.whl", buffer.getvalue()


@functools.lru_cache(maxsize=1)
def uv_bin() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        raise LockError("the PyPI step needs uv (pip install uv)", field="pip") from None
    return find_uv_bin()


def rfc3339(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pylock(packages: list[PypiPackage]) -> str:
    """A pylock.toml naming versions only: what uv prefers when it resolves again."""
    lines = ['lock-version = "1.0"', 'created-by = "scistacks"', ""]
    for p in sorted(packages):
        lines += ["[[packages]]", f'name = "{p.name}"', f'version = "{p.version}"', ""]
    return "\n".join(lines)


def resolve_all(
    solves: list[PypiSolve], options: PypiOptions
) -> dict[tuple[str, str], list[PypiPackage]]:
    """(distribution, platform) -> its locked wheels; the solves run side by side (give
    a child's solve after its parent's results, as ``pinned``)."""
    if not solves:
        return {}
    folder = options.index.folder()
    with pypi_server.serve() as server:
        index_url = server.add("index", folder) if folder else options.index.index
        jobs = []
        for i, solve in enumerate(solves):
            provided = pypi_names.provided(solve.conda)
            stubs = dict(
                stub_wheel(name, str(p.version)) for name, p in provided.items() if p.version
            )
            jobs.append((solve, provided, server.add(f"conda-{i}", stubs)))

        def one(job):
            solve, provided, stub_url = job
            step = _Step(solve, provided, options, server, index_url, stub_url)
            return (solve.dist.name, solve.platform), step.run()

        uv_bin()  # found here: sysconfig's first use is not thread-safe (EXE read as None)
        with ThreadPoolExecutor(max_workers=min(4, len(jobs))) as pool:
            return dict(pool.map(one, jobs))


class _Step:
    def __init__(self, solve, provided, options, server, index_url, stub_url):
        self.solve, self.provided, self.options = solve, provided, options
        self.server, self.index_url, self.stub_url = server, index_url, stub_url
        self.target = target(solve.dist, solve.platform, solve.conda)
        self.mapped = f"{server.base}/index/files/"
        self.failure = pypi_conflicts.Failure(
            solve.dist, solve.platform, self.target.python, options.index.index, provided
        )

    def run(self) -> list[PypiPackage]:
        with tempfile.TemporaryDirectory(prefix="scistacks-pypi-") as tmp:
            out = Path(tmp) / "pylock.toml"
            data = self._compile(Path(tmp), out)
        chosen: dict[str, tuple[str, str, str]] = {}  # name -> (version, uv's URL, sha256)
        for pkg in data.get("packages", []):
            name, version = canonicalize_name(pkg["name"]), str(pkg["version"])
            if name in self.provided:
                if self.provided[name].version != _pep440(version):
                    raise pypi_conflicts.version_conflict(self.failure, name, version)
                continue  # conda installs it
            chosen[name] = (version, *self._file(name, version, pkg))
        self._sha256 = {url: sha256 for _, url, sha256 in chosen.values()}
        reqs = [Requirement(r) for r in self._requirements()]
        deps = pypi_metadata.dependencies(
            {n: url for n, (_, url, _) in chosen.items()},
            reqs,
            set(chosen) | set(self.provided),
            self.target,
            self._metadata,
        )
        return [
            PypiPackage(
                name=name,
                version=version,
                platform=self.solve.platform,
                url=self._canonical(url),
                sha256=sha256,
                depends=tuple(f"{d} {s}" if s != "*" else d for d, s in deps[name].items()),
            )
            for name, (version, url, sha256) in sorted(chosen.items())
        ]

    def _requirements(self) -> list[str]:
        dist = self.solve.dist
        moving = [u for u in self.solve.upgrade if str(Requirement(u).specifier)]
        return [*(dist.pip_constraints or dist.pip), *moving]

    def _compile(self, tmp: Path, out: Path) -> dict:
        (tmp / "requirements.in").write_text("\n".join(self._requirements()) + "\n")
        constraints = [f"{n}=={p.version}" for n, p in self.provided.items() if p.version]
        constraints += [f"{p.name}=={p.version}" for p in self.solve.pinned]
        (tmp / "constraints.txt").write_text("\n".join(constraints) + "\n")
        if self.solve.preferred:
            out.write_text(_pylock(self.solve.preferred))
        argv = [
            uv_bin(), "pip", "compile", "requirements.in",
            "--constraints", "constraints.txt",
            "--format", "pylock.toml", "--output-file", str(out),
            "--python-version", self.target.python,
            "--python-platform", self.target.uv_platform,
            "--index", self.stub_url, "--default-index", self.index_url,
            "--no-header", "--quiet", "--no-config",
            # the target is --python-version: without an interpreter named, uv looks for
            # (and downloads) one of that version; this one only builds sdists' metadata
            "--python", sys.executable, "--no-python-downloads",
        ]  # fmt: skip
        if not self.options.allow_sdist:
            argv.append("--no-build")
        if self.options.exclude_newer:
            argv += ["--exclude-newer", rfc3339(self.options.exclude_newer)]
        for spec in self.solve.upgrade:
            argv += ["--upgrade-package", Requirement(spec).name]
        env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") or k in _UV_KEPT}
        proc = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise pypi_conflicts.explain(proc.stderr, self.failure)
        try:
            return tomllib.loads(out.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise LockError(f"unreadable uv output: {exc}", field="pip") from None

    def _file(self, name: str, version: str, pkg: dict) -> tuple[str, str]:
        """(URL, sha256) of the file to lock: the best wheel for the target, else the sdist."""
        priority = self.target.tag_priority()

        def rank(wheel: dict) -> int:
            file_name = wheel["url"].rsplit("/", 1)[-1].split("#", 1)[0]
            found = [priority[t] for t in parse_wheel_filename(file_name)[3] if t in priority]
            return min(found, default=len(priority))

        wheels = [w for w in pkg.get("wheels", []) if rank(w) < len(priority)]
        chosen = min(wheels, key=rank) if wheels else pkg.get("sdist") or pkg.get("archive")
        if chosen is None or (not wheels and not self.options.allow_sdist):
            req, file, fld = pypi_conflicts.requirement_of(self.solve.dist, [name])
            raise LockError(
                f"{req!r}: {name} {version} has no wheel for {self.solve.platform} "
                "(--allow-sdist locks its sdist anyway)",
                file=file,
                field=fld,
            )
        sha256 = (chosen.get("hashes") or {}).get("sha256")
        if not sha256:
            raise LockError(f"uv gave no sha256 for {name} {version}", field="pip")
        return chosen["url"].split("#", 1)[0], sha256

    def _canonical(self, url: str) -> str:
        if url.startswith(self.mapped):
            return wheel_url(self.options.index.index, url[len(self.mapped) :])
        return url

    def _metadata(self, url: str) -> bytes:
        if url.startswith(self.mapped):
            path = self.options.index.folder() / url[len(self.mapped) :]
            data = pypi_server.core_metadata(path.read_bytes(), path.name)
            if data is None:
                raise LockError(f"no METADATA in {path.name}", file=str(path.parent))
            return data
        cache = self.options.metadata_cache
        cached = cache / f"{self._sha256[url]}.metadata" if cache else None
        if cached is not None and cached.is_file():
            return cached.read_bytes()
        data = pypi_metadata.fetch_metadata(url)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cached, data)  # keyed by the file's hash: never stale
        return data


def _pep440(version: str) -> Version | None:
    try:
        return Version(version)
    except InvalidVersion:
        return None


def resolve_members(
    project: Project,
    catalog: Catalog,
    names: list[str],
    conda: dict[str, dict[str, list[LockedPackage]]],
    options: PypiOptions,
    update: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, list[PypiPackage]]]:
    """name -> platform -> wheels for each of ``names`` (parents first) with pip
    requirements, on its conda lock (``conda``: name -> platform -> packages).

    A child keeps its parent's wheels when both solve together, and prefers them when it
    solves apart. ``update`` (a bump) prefers each member's locked wheels except those it
    names (``"*"``: none)."""
    out: dict[str, dict[str, list[PypiPackage]]] = {}
    for name in names:
        dist = catalog.get(name)
        if not dist.pip_constraints:
            continue
        parent = dist.parent
        together = bool(parent) and catalog.solve_group(parent) == catalog.solve_group(name)
        parents = out.get(parent) if parent in out else _locked_pypi(project, parent)
        moving = (update or {}).get(name, [])
        old = _locked_pypi(project, name) if update and "*" not in moving else {}
        solves = []
        for platform in dist.platforms:
            from_parent = (parents or {}).get(platform, [])
            locked_here = old.get(platform, [])
            here = {w.name for w in locked_here}
            upgrade = [str(r) for r in map(bump_requirement, moving) if r and r.name in here]
            keep = {Requirement(u).name for u in upgrade}
            solves.append(
                PypiSolve(
                    dist,
                    platform,
                    conda[name][platform],
                    pinned=from_parent if together else [],
                    preferred=[w for w in locked_here if w.name not in keep]
                    + ([] if together else from_parent),
                    upgrade=upgrade,
                )
            )
        for (_, platform), wheels in resolve_all(solves, options).items():
            out.setdefault(name, {})[platform] = wheels
    return out


def bump_requirement(spec: str) -> Requirement | None:
    """A bump's ``PKG``, ``PKG=VERSION`` or spec as a PEP 508 requirement with a
    normalised name (None: ``*`` or not a requirement either way)."""
    if spec == "*":
        return None
    try:
        req = Requirement(spec)
    except InvalidRequirement:
        try:
            parsed = matchspec.parse(spec)
        except ValueError:
            return None
        version = (parsed.version or "").strip()
        if version and version != "*" and version[0].isdigit():
            version = "==" + version
        try:
            req = Requirement(parsed.name.normalized + ("" if version == "*" else version))
        except InvalidRequirement:
            return None
    req.name = canonicalize_name(req.name)
    return req


def _locked_pypi(project: Project, name: str | None) -> dict[str, list[PypiPackage]]:
    """The wheels of ``lockfiles/NAME/conda-lock.yml`` (none without a lock)."""
    if not name or not project.lockfile(name).is_file():
        return {}
    from builder.lock import condalock

    path = project.lockfile(name)
    return condalock.read(path, project.relative(path)).pypi
