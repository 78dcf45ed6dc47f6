"""conda-lock's unified lockfile format (``conda-lock.yml``, version 1 on disk).

Read through conda-lock's own pydantic models, so what we read is what ``conda-lock
install``, ``conda-lock render``, micromamba and ``rattler.LockFile`` read. Written as the
mapping those models dump (field order, omitted empty fields), without importing them:
conda-lock takes about a second to import, longer than a lock takes to write.
``tests/lock/test_condalock.py`` checks the text against conda-lock's models.
Output is deterministic: packages sorted by (name, platform), no timestamps.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import yaml

from builder.errors import LockError
from builder.lock import yamlfast
from builder.lock.model import LockedDistribution, LockedPackage, PypiPackage
from builder.yamlio import load_yaml

META_PREFIX = "scistacks."


def _dependencies(depends: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for dep in depends:
        name, _, rest = dep.strip().partition(" ")
        out[name] = rest.strip() or "*"
    return dict(sorted(out.items()))


def _channel(name: str) -> dict:
    """A channel as conda-lock's ``Channel.from_string`` writes it. In a URL with
    credentials or a token, conda-lock puts the names of the environment variables that
    hold them: for those, conda-lock itself is asked."""
    if "://" in name:
        parsed = urlparse(name)
        if parsed.username or parsed.password or "/t/" in parsed.path:
            from conda_lock.models.channel import Channel

            return json.loads(Channel.from_string(name).model_dump_json())
        name = urlunparse(parsed)
    return {"url": name, "used_env_vars": []}


def _package(p: LockedPackage) -> dict:
    """conda-lock's v1 ``LockedDependency``, as it dumps one (None fields left out)."""
    digests = {"md5": p.md5, "sha256": p.sha256} if p.sha256 else {"md5": p.md5}
    return {
        "name": p.name,
        "version": p.version,
        "manager": "conda",
        "platform": p.platform,
        "dependencies": _dependencies(p.depends),
        "url": p.url,
        "hash": digests,
        "build": p.build,
        "category": p.category,
        "optional": p.category != "main",
    }


def _pypi_package(w: PypiPackage) -> dict:
    """conda-lock's ``manager: pip`` entry, as it dumps one: no build, sha256 only."""
    return {
        "name": w.name,
        "version": w.version,
        "manager": "pip",
        "platform": w.platform,
        "dependencies": _dependencies(w.depends),
        "url": w.url,
        "hash": {"sha256": w.sha256},
        "category": w.category,
        "optional": w.category != "main",
    }


def render(locked: LockedDistribution, *, sources: list[str], header: str) -> str:
    metadata = {
        "content_hash": {plat: locked.inputs_hash for plat in locked.platforms},
        "channels": [_channel(c) for c in locked.channels],
        "platforms": list(locked.platforms),
        "sources": list(sources),
    }
    if locked.metadata:
        metadata["custom_metadata"] = {
            META_PREFIX + k: v for k, v in sorted(locked.metadata.items())
        }
    # conda-lock sorts by (manager, name, platform)
    packages = sorted(
        (p for plat in locked.platforms for p in locked.packages[plat]),
        key=lambda p: ("conda", p.name, p.platform),
    )
    wheels = sorted(
        (w for plat in locked.platforms for w in locked.pypi.get(plat, ())),
        key=lambda w: (w.name, w.platform),
    )
    head = yamlfast.dump({"version": 1, "metadata": metadata})
    if not packages and not wheels:
        return header + head + "package: []\n"
    entries = [_package_text(p) for p in packages] + [_pypi_package_text(w) for w in wheels]
    return header + head + "package:\n" + "".join(entries)


def render_entries(packages) -> None:
    """Write these packages' entries ahead; ``render`` then joins them. The lock stage
    calls it as each platform's solve ends, while the others still solve."""
    for p in packages:
        _package_text(p)


# A family's locks repeat the parent's entries (base's ~200 in each of its children's):
# each entry's text is made once per process.
@functools.lru_cache(maxsize=16384)
def _package_text(p: LockedPackage) -> str:
    return yamlfast.dump_item(_package(p))


@functools.lru_cache(maxsize=1024)
def _pypi_package_text(w: PypiPackage) -> str:
    return yamlfast.dump_item(_pypi_package(w))


def read(path: Path, shown: str | None = None) -> LockedDistribution:
    """Read a conda-lock.yml; any problem is a LockError naming the file."""
    shown = shown or str(path)
    data = load_yaml(path, shown_as=shown, error=LockError, machine_written=True)
    return _from_data(data, shown, Path(path).parent.name)


def parse_text(text: str, shown: str, name: str = "") -> LockedDistribution:
    """A conda-lock.yml given as text, e.g. ``git show REF:lockfiles/NAME/conda-lock.yml``."""
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise LockError(
            f"invalid YAML: {getattr(exc, 'problem', None) or exc}", file=shown, field=where
        ) from None
    return _from_data(data, shown, name)


def _from_data(data, shown: str, default_name: str) -> LockedDistribution:
    if not isinstance(data, dict):
        raise LockError("not a conda-lock file (expected a mapping)", file=shown)
    version = data.pop("version", None)
    if version != 1:
        raise LockError(
            f"unsupported conda-lock file version {version!r} (expected 1)",
            file=shown,
            field="version",
        )
    from conda_lock.lockfile.v1.models import Lockfile as LockfileV1
    from pydantic import ValidationError

    try:
        lockfile = LockfileV1.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise LockError(f"corrupt lockfile: {err['msg']}", file=shown, field=where) from None
    meta = lockfile.metadata
    custom = {
        k[len(META_PREFIX) :]: v
        for k, v in (meta.custom_metadata or {}).items()
        if k.startswith(META_PREFIX)
    }
    packages: dict[str, list[LockedPackage]] = {plat: [] for plat in meta.platforms}
    pypi: dict[str, list[PypiPackage]] = {}
    for dep in lockfile.package:
        if dep.platform not in packages:
            raise LockError(
                f"package {dep.name!r} is locked for unlisted platform {dep.platform!r}", file=shown
            )
        depends = tuple(f"{n} {s}".strip() if s != "*" else n for n, s in dep.dependencies.items())
        if dep.manager == "pip":
            pypi.setdefault(dep.platform, []).append(
                PypiPackage(
                    name=dep.name,
                    version=dep.version,
                    platform=dep.platform,
                    url=dep.url,
                    sha256=dep.hash.sha256 or "",
                    depends=depends,
                    category=dep.category,
                )
            )
            continue
        file_name = dep.url.rsplit("/", 1)[-1]
        subdir = dep.url.rsplit("/", 2)[-2] if dep.url.count("/") >= 2 else ""
        build = dep.build or _build_from_filename(file_name, dep.name, dep.version)
        packages[dep.platform].append(
            LockedPackage(
                name=dep.name,
                version=dep.version,
                build=build,
                platform=dep.platform,
                url=dep.url,
                md5=dep.hash.md5 or "",
                sha256=dep.hash.sha256 or "",
                subdir=subdir,
                depends=depends,
                category=dep.category,
            )
        )
    for plat in packages:
        packages[plat].sort(key=lambda p: p.name)
    for wheels in pypi.values():
        wheels.sort(key=lambda w: w.name)
    hashes = set(meta.content_hash.values())
    return LockedDistribution(
        name=custom.get("distribution", default_name),
        platforms=tuple(meta.platforms),
        channels=tuple(c.url for c in meta.channels),
        packages=packages,
        inputs_hash=hashes.pop() if len(hashes) == 1 else "",
        metadata=custom,
        pypi=pypi,
    )


def _build_from_filename(file_name: str, name: str, version: str) -> str:
    stem = file_name.removesuffix(".conda").removesuffix(".tar.bz2")
    return stem.removeprefix(f"{name}-{version}-")
