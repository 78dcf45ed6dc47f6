"""Solving a family with py-rattler, the way pixi's solve-groups do.

Per platform, the union of every member's specs is solved once. Each member's lock is
then the dependency closure of its own specs inside that union. Every package has one
record per group, so a parent's lock is a subset of each child's, at identical builds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from dataclasses import dataclass

import rattler

from builder.errors import LockError
from builder.lock.channels import ChannelMap
from builder.lock.platforms import virtual_packages
from builder.spec import Distribution


@dataclass
class GroupSolve:
    """One solve request: a group's members on one platform."""

    group: str
    platform: str
    members: list[Distribution]
    pinned: list[rattler.RepoDataRecord]  # must stay exactly (a parent group's records)
    locked: list[rattler.RepoDataRecord]  # preferred (the existing lock, for bumps)
    specs_override: list[str] | None = None  # extra/replacement specs for bumps

    @property
    def channels(self) -> list[str]:
        out: list[str] = []
        for m in self.members:
            out += [c for c in m.channels if c not in out]
        return out

    @property
    def specs(self) -> list[str]:
        out: list[str] = []
        for m in self.members:
            out += [s for s in m.constraints if s not in out]
        for s in self.specs_override or ():
            if s not in out:
                out.append(s)
        return out

    @property
    def virtual(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for m in self.members:
            merged.update(m.virtual_packages)
        return merged


def _reason(exc: Exception, req: GroupSolve) -> str:
    """Which packages clash and which spec files asked for them, else rattler's words."""
    from builder.lock.conflicts import explain

    return explain(str(exc), req.members, req.specs_override) or _short_reason(exc, req.specs)


def _short_reason(exc: Exception, specs: list[str]) -> str:
    """rattler's explanation, cut down to the lines that name packages."""
    text = str(exc)
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    keep = [
        ln.strip(" │├└─")
        for ln in lines
        if re.search(
            r"cannot be installed|conflict|no candidates|which cannot|requires|is locked|is pinned",
            ln,
        )
    ]
    keep = [k for k in keep if k] or lines[:3]
    if len(keep) > 6:
        keep = [*keep[:6], f"... ({len(keep) - 6} more lines)"]
    return "; ".join(keep)


async def _solve(
    req: GroupSolve, channel_map: ChannelMap, gateway: rattler.Gateway, exclude_newer
) -> list[rattler.RepoDataRecord]:
    from builder.lock import faults

    faults.maybe_raise("solver-raise", req.platform)
    sources = [rattler.Channel(channel_map.source_url(c)) for c in req.channels]
    return await rattler.solve(
        sources=sources,
        specs=req.specs,
        gateway=gateway,
        platforms=[req.platform, "noarch"],
        virtual_packages=virtual_packages(req.platform, req.virtual),
        pinned_packages=req.pinned or None,
        locked_packages=req.locked or None,
        exclude_newer=exclude_newer,
    )


async def _explain_failure(
    req: GroupSolve, channel_map, gateway, exclude_newer, exc: Exception
) -> LockError:
    """Find which members clash: each alone, then the smallest failing pair."""
    where = f"{req.group} on {req.platform}"
    if len(req.members) > 1:
        for m in req.members:
            alone = GroupSolve(
                req.group, req.platform, [m], req.pinned, req.locked, req.specs_override
            )
            try:
                await _solve(alone, channel_map, gateway, exclude_newer)
            except Exception as inner:
                return LockError(
                    f"{m.name} cannot be solved on {req.platform}: {_reason(inner, alone)}",
                    file=m.spec_files[-1],
                    field="dependencies",
                )
        names = [m.name for m in req.members]
        for i, a in enumerate(req.members):
            for b in req.members[i + 1 :]:
                if a.name in b.chain or b.name in a.chain:
                    continue
                pair = GroupSolve(
                    req.group, req.platform, [a, b], req.pinned, req.locked, req.specs_override
                )
                try:
                    await _solve(pair, channel_map, gateway, exclude_newer)
                except Exception as inner:
                    return LockError(
                        f"solve group {req.group!r} on {req.platform}: {a.name} and {b.name} cannot share one "
                        f"environment ({_reason(inner, pair)}); give one of them its own "
                        "`solve_group:` to solve it apart from its siblings",
                        file=b.spec_files[-1],
                        field="dependencies",
                    )
        return LockError(
            f"solve group {where} ({', '.join(names)}) is unsolvable: {_reason(exc, req)}"
        )
    m = req.members[0]
    return LockError(
        f"cannot be solved on {req.platform}: {_reason(exc, req)}",
        file=m.spec_files[-1],
        field="dependencies",
    )


def closure(
    specs: list[str], records: list[rattler.RepoDataRecord]
) -> list[rattler.RepoDataRecord]:
    """The records needed by ``specs`` inside a solved set with one record per name."""
    by_name = {r.name.normalized: r for r in records}
    todo = [rattler.MatchSpec(s).name.normalized for s in specs]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name.startswith("__"):
            continue
        seen.add(name)
        record = by_name.get(name)
        if record is None:
            raise LockError(f"internal: {name!r} missing from the solved set")
        todo += [d.split()[0] for d in record.depends]
    return sorted((by_name[n] for n in seen), key=lambda r: r.name.normalized)


def solve_all(
    requests: list[GroupSolve],
    channel_map: ChannelMap,
    *,
    exclude_newer: dt.datetime | None = None,
    progress=None,
    gateway: rattler.Gateway | None = None,
    on_solved=None,
) -> dict[tuple[str, str], list[rattler.RepoDataRecord]]:
    """Solve every request; returns (group, platform) -> union records. Raises on the first failure.

    ``gateway``: one that has read the channels already (its repodata cache is reused).
    ``on_solved(request, records)`` runs as each solve ends, while the others go on."""

    async def one(req: GroupSolve, gateway: rattler.Gateway):
        start = time.perf_counter()
        try:
            records = await _solve(req, channel_map, gateway, exclude_newer)
        except Exception as exc:
            if _is_network_error(exc):
                sources = ", ".join(channel_map.source_url(c) for c in req.channels)
                raise LockError(
                    f"cannot read channel repodata: {_first_line(exc)}", field=sources
                ) from None
            raise await _explain_failure(req, channel_map, gateway, exclude_newer, exc) from None
        if progress:
            progress(req, len(records), time.perf_counter() - start)
        if on_solved:
            on_solved(req, records)
        return (req.group, req.platform), records

    async def run():
        shared = gateway or rattler.Gateway()
        # platforms are independent: solve them side by side (rattler solves off the GIL)
        return dict(await asyncio.gather(*(one(req, shared) for req in requests)))

    return asyncio.run(run())


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_network_error(exc: Exception) -> bool:
    name = type(exc).__name__
    text = str(exc).lower()
    return name in ("FetchRepoDataError", "GatewayError", "IoError") or any(
        s in text
        for s in (
            "error sending request",
            "dns error",
            "connection refused",
            "failed to fetch",
            "no such file or directory",
            "404",
        )
    )
