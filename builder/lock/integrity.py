"""Lock integrity: a lockfile checked against itself, its spec and its explicit files.

A lock that is still valid YAML may be damaged all the same: truncated at a package
boundary, edited by hand, its explicit files deleted or left behind. Every reader of a
lock (``read_lock``) and ``lock --check`` run these checks, so no later stage builds an
environment from a damaged lock. Each problem is one ``LockError`` naming the file and the
package or field:

- hashes are well formed (md5: 32 hex digits, sha256: 64), URLs are package URLs;
- each platform's package set is closed under its dependencies (a package's dependency
  is locked for the same platform), with one record per package name;
- every direct dependency of the spec is locked on every platform (when the lock is up
  to date with the spec: a stale lock is reported as stale instead);
- every ``conda-PLATFORM.lock`` exists and holds the same URLs and md5s as conda-lock.yml
  (as sets: their order is the installation order, not ours to check);
- PyPI entries (``manager: pip``) have sha256 hashes and wheel URLs, none is a package
  conda installs too, each dependency is locked from PyPI or conda, and
  ``pip-PLATFORM.txt`` lists exactly them.
"""

from __future__ import annotations

import re
from pathlib import Path

from builder.errors import LockError
from builder.lock.model import LockedDistribution

MD5_RE = re.compile(r"[0-9a-f]{32}\Z")
SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
PACKAGE_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+\.(conda|tar\.bz2)\Z")


def _check_digest(value: str, kind: str, shown: str, where: str) -> None:
    pattern, digits = (MD5_RE, 32) if kind == "md5" else (SHA256_RE, 64)
    if not pattern.match(value or ""):
        raise LockError(
            f"malformed {kind} {value!r} (expected {digits} hex digits)",
            file=shown,
            field=f"{where}: hash.{kind}",
        )


def check_records(locked: LockedDistribution, shown: str) -> None:
    """Hashes, URLs, one record per name, and each platform closed under dependencies."""
    for platform in locked.platforms:
        names: dict[str, object] = {}
        for p in locked.packages.get(platform, ()):
            where = f"package {p.name} ({platform})"
            if p.name in names:
                raise LockError("locked twice for one platform", file=shown, field=where)
            names[p.name] = p
            _check_digest(p.md5, "md5", shown, where)
            if p.sha256:
                _check_digest(p.sha256, "sha256", shown, where)
            if not PACKAGE_URL_RE.match(p.url or ""):
                raise LockError(f"not a package URL: {p.url!r}", file=shown, field=f"{where}: url")
        for p in locked.packages.get(platform, ()):
            for dep in p.depends:
                dep_name = dep.split()[0] if dep.split() else ""
                if dep_name and not dep_name.startswith("__") and dep_name not in names:
                    raise LockError(
                        f"depends on {dep!r}, which is not locked for {platform} "
                        "(a truncated or edited lockfile? relock it)",
                        file=shown,
                        field=f"package {p.name} ({platform})",
                    )


WHEEL_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+\.(whl|tar\.gz|zip)\Z")


def check_pypi(locked: LockedDistribution, shown: str) -> None:
    """PyPI entries: sha256 hashes, file URLs, one per name, none that conda installs
    too, and each dependency locked from PyPI or installed by conda."""
    from builder.lock.pypi_names import provided

    for platform in locked.platforms:
        if not locked.pypi.get(platform):
            continue  # no wheels: nothing to check, nothing conda could clash with
        by_conda = provided(locked.packages.get(platform, []))
        names: set[str] = set()
        for w in locked.pypi.get(platform, ()):
            where = f"pip package {w.name} ({platform})"
            if w.name in names:
                raise LockError("locked twice for one platform", file=shown, field=where)
            names.add(w.name)
            if w.name in by_conda:
                raise LockError(
                    f"conda installs it already (as {by_conda[w.name].conda.name}); relock it",
                    file=shown,
                    field=where,
                )
            _check_digest(w.sha256, "sha256", shown, where)
            if not WHEEL_URL_RE.match(w.url or ""):
                raise LockError(f"not a wheel URL: {w.url!r}", file=shown, field=f"{where}: url")
        for w in locked.pypi.get(platform, ()):
            for dep in w.depends:
                name = dep.split()[0]
                if name not in names and name not in by_conda:
                    raise LockError(
                        f"depends on {dep!r}, which is locked neither from PyPI nor from conda "
                        f"for {platform} (a truncated or edited lockfile? relock it)",
                        file=shown,
                        field=f"pip package {w.name} ({platform})",
                    )


def check_direct(
    locked: LockedDistribution, shown: str, direct: dict[str, str], *, pypi: bool = False
) -> None:
    """Every direct dependency (name -> the spec file asking for it) is locked on every
    platform of the lock. ``pypi``: the pip requirements without a marker, each locked
    from PyPI or installed by conda."""
    from builder.lock.pypi_names import provided

    for platform in locked.platforms:
        conda = locked.packages.get(platform, [])
        if pypi:
            have = {w.name for w in locked.pypi.get(platform, ())} | set(provided(conda))
        else:
            have = {p.name for p in conda}
        for name, spec in direct.items():
            if name not in have:
                raise LockError(
                    f"{'pip requirement ' if pypi else ''}{name} (asked for by {spec}) is not "
                    f"locked for {platform} (a truncated or edited lockfile? relock it)",
                    file=shown,
                    field="package",
                )


def explicit_entries(path: Path, shown: str) -> set[tuple[str, str]]:
    """(URL, md5) of each package line of an @EXPLICIT file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError("missing (deleted?): relock to write it again", file=shown) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"cannot read: {exc}", file=shown) from None
    lines = [ln.strip() for ln in text.splitlines()]
    if "@EXPLICIT" not in lines:
        raise LockError("not an explicit lockfile (no @EXPLICIT line)", file=shown)
    out = set()
    for ln in lines[lines.index("@EXPLICIT") + 1 :]:
        if not ln or ln.startswith("#"):
            continue
        url, _, digest = ln.partition("#")
        out.add((url, digest.removeprefix("md5:")))
    return out


def check_explicit(locked: LockedDistribution, lock_dir: Path, shown_dir: str) -> None:
    """Each platform's explicit file exists and lists the same packages as conda-lock.yml
    (and its ``pip-PLATFORM.txt`` the same wheels)."""
    for platform in locked.platforms:
        _check_pip_file(locked, platform, lock_dir, shown_dir)
        name = f"conda-{platform}.lock"
        shown = f"{shown_dir}/{name}"
        found = explicit_entries(lock_dir / name, shown)
        wanted = {(p.url, p.md5) for p in locked.packages.get(platform, ())}
        _check_pip_lines(locked, platform, lock_dir / name, shown)
        if found == wanted:
            continue
        by_url = {url: md5 for url, md5 in wanted}
        extra = sorted(found - wanted)
        missing = sorted(wanted - found)
        if extra and extra[0][0] in by_url:
            url, md5 = extra[0]
            message = f"md5 {md5!r} of {url.rsplit('/', 1)[-1]} differs from conda-lock.yml's"
        elif extra:
            message = f"{extra[0][0].rsplit('/', 1)[-1]} is not in conda-lock.yml"
        else:
            message = f"{missing[0][0].rsplit('/', 1)[-1]} of conda-lock.yml is missing"
        raise LockError(
            f"disagrees with conda-lock.yml: {message} (relock to write it again)", file=shown
        )


def _check_pip_lines(locked: LockedDistribution, platform: str, path: Path, shown: str):
    """An explicit file's ``# pip NAME @ URL#sha256=HEX`` lines (``conda-lock install``
    reads them) are the lock's PyPI packages."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# pip "):
            name, _, rest = line.removeprefix("# pip ").partition(" @ ")
            url, _, digest = rest.partition("#sha256=")
            found.add((name, url, digest))
    wanted = {(w.name, w.url, w.sha256) for w in locked.pypi.get(platform, ())}
    if found != wanted:
        odd = sorted(found ^ wanted)[0][0]
        raise LockError(
            f"disagrees with conda-lock.yml on the PyPI package {odd} (its '# pip' line; "
            "relock to write it again)",
            file=shown,
        )


def _check_pip_file(locked: LockedDistribution, platform: str, lock_dir: Path, shown_dir: str):
    from builder.lock import pip_requirements

    name = pip_requirements.file_name(platform)
    path, shown = lock_dir / name, f"{shown_dir}/{name}"
    wanted = {(w.name, w.url, w.sha256) for w in locked.pypi.get(platform, ())}
    if not wanted:
        if path.exists():
            raise LockError("left behind: conda-lock.yml has no PyPI packages for it", file=shown)
        return
    try:
        found = pip_requirements.parse_requirements(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LockError("missing (deleted?): relock to write it again", file=shown) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"cannot read: {exc}", file=shown) from None
    if found != wanted:
        odd = sorted(found ^ wanted)[0]
        raise LockError(
            f"disagrees with conda-lock.yml on {odd[0]} (relock to write it again)", file=shown
        )
