"""What a solve should prefer: the records of existing locks (a parent's, or a bump's own
ones but the moving packages), as the channel's own copies."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import rattler

from builder.errors import LockError
from builder.lock.channels import ChannelMap
from builder.lock.read import read_lock
from builder.project import Project
from builder.spec import matchspec


def lock_environment(path: Path) -> rattler.Environment:
    """The default environment of a ``conda-lock.yml``, read with rattler (several times
    faster than YAML at this size). A bump reads each lock for its diff and for its
    preferences: the file is parsed once while it is unchanged (a lock is rewritten by a
    rename, so a new one is another inode). Raises rattler's error."""
    stat = path.stat()
    return _environment(path.resolve(), stat.st_ino, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _environment(path: Path, inode: int, mtime_ns: int, size: int) -> rattler.Environment:
    return rattler.LockFile.from_path(path).default_environment()


# Freeing a gateway drops the tens of thousands of records it has read, ~15 ms spent in
# rattler after the lock is written. scistacks leaves with os._exit (cli/app.py), so the
# last gateway is kept until then instead (one at a time: a long-lived caller frees it
# at its next lock).
_last: list[rattler.Gateway] = []


class Preferred:
    """Locked records for the solver to prefer, as the channel's own copies.

    A lockfile keeps neither timestamps nor ``constrains``. rattler drops records without a
    timestamp under ``exclude_newer``, so the lock's own records would be silently ignored
    and every package would move; the channel's copies carry both."""

    def __init__(self, project: Project, channel_map: ChannelMap):
        self.project, self.channel_map = project, channel_map
        self._locks: dict[str, dict[str, list[rattler.RepoDataRecord]]] = {}
        self.gateway = rattler.Gateway()
        _last[:] = [self.gateway]

    def locked(self, name: str, platform: str) -> list[rattler.RepoDataRecord]:
        """The records of ``lockfiles/NAME/conda-lock.yml`` for one platform (none if no lock)."""
        if name not in self._locks:
            path = self.project.lockfile(name)
            self._locks[name] = {}
            if path.is_file():
                try:
                    env = lock_environment(path)
                    self._locks[name] = {
                        p.name: list(env.conda_repodata_records_for_platform(p) or [])
                        for p in env.platforms()
                    }
                except Exception as exc:
                    read_lock(self.project, name)  # our readable error, if it finds one
                    raise LockError(
                        f"unreadable lockfile: {exc}", file=self.project.relative(path)
                    ) from None
        return self._locks[name].get(platform, [])

    def from_channel(self, records, channels, platform) -> list[rattler.RepoDataRecord]:
        """The channel's records for these locked ones; those the channel lost are left out."""
        if not records:
            return []
        sources = [rattler.Channel(self.channel_map.source_url(c)) for c in channels]
        names = sorted({r.name.normalized for r in records})
        try:
            found = asyncio.run(
                self.gateway.query(sources, [platform, "noarch"], names, recursive=False)
            )
        except Exception as exc:
            first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise LockError(
                f"cannot read channel repodata: {first}",
                field=", ".join(self.channel_map.source_url(c) for c in channels),
            ) from None
        by_url = {
            self.channel_map.to_canonical(str(r.url)): r for per_source in found for r in per_source
        }
        out = (by_url.get(self.channel_map.to_canonical(str(r.url))) for r in records)
        return [r for r in out if r is not None]


def update_plan(members, platform, update, parent_records, preferred: Preferred):
    """The records the solver should prefer, and the extra specs of a bump.

    Without ``update``, a group prefers only its parent's records (a separated solve group).
    A bump prefers the parent's records, then the group's own locked records, except the
    moving packages: ``update[member]`` names specs (``"xarray >=2025.12"``) or ``"*"``,
    which moves every package of that member that its ancestors do not lock.
    """
    channels = list(dict.fromkeys(c for m in members for c in m.channels))
    if not update:
        return preferred.from_channel(parent_records, channels, platform), None
    old: dict[str, rattler.RepoDataRecord] = {}
    for m in members:
        for r in preferred.locked(m.name, platform):
            old.setdefault(r.name.normalized, r)
    direct = {n for m in members for n in m.direct_names}
    moving: set[str] = set()
    extra: list[str] = []
    for m in members:
        for spec in update.get(m.name, ()):
            if spec == "*":
                inherited = {
                    r.name.normalized for a in m.chain[:-1] for r in preferred.locked(a, platform)
                }
                moving |= {
                    r.name.normalized for r in preferred.locked(m.name, platform)
                } - inherited
                continue
            name = matchspec.package_name(spec)
            # only where the package is: a bump must not add it to a platform that lacks it
            if name in old or name in direct:
                moving.add(name)
                extra.append(spec)
    keep = {r.name.normalized: r for r in parent_records}
    for name, r in old.items():
        keep.setdefault(name, r)
    records = [r for name, r in sorted(keep.items()) if name not in moving]
    return preferred.from_channel(records, channels, platform), extra or None
