#!/usr/bin/env python3
"""A bare ``rattler.solve`` in a process of its own: what the lock benchmarks measure a
whole ``scistacks`` process against.

Run as a script it imports rattler only: ``_bare_solve.py CHANNEL REQUESTS_JSON``, each
request ``[platform, specs, [[name, version, build], ...] (virtual packages),
exclude_newer or null]``; the platforms are solved side by side with one gateway, as
``scistacks lock`` solves them. ``requests()`` and ``timed()`` are the benchmarks' side.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time


def requests(catalog, members: list[str], platforms, exclude_newer=None) -> list:
    """One request per platform: the union of the members' specs, as a solve group."""
    from builder.lock.platforms import virtual_packages

    out = []
    for platform in platforms:
        dists = [catalog.get(m) for m in members if platform in catalog.get(m).platforms]
        specs = list(dict.fromkeys(s for d in dists for s in d.constraints))
        declared = {k: v for d in dists for k, v in d.virtual_packages.items()}
        virtual = [
            [v.name.normalized, str(v.version), str(v.build_string)]
            for v in virtual_packages(platform, declared)
        ]
        out.append([platform, specs, virtual, exclude_newer and exclude_newer.isoformat()])
    return out


def timed(command: list[str], **kwargs) -> float:
    """Wall time of one process, start to exit; it must succeed."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, **kwargs)
    return time.perf_counter() - start


def bare(channel: str, solve_requests: list) -> float:
    """Wall time of a process that solves ``solve_requests`` and exits."""
    return timed([sys.executable, __file__, channel, json.dumps(solve_requests)])


def _main(channel: str, solve_requests: list) -> None:
    import rattler

    async def run():
        gateway = rattler.Gateway()
        await asyncio.gather(
            *(
                rattler.solve(
                    sources=[rattler.Channel(channel)],
                    specs=specs,
                    gateway=gateway,
                    platforms=[platform, "noarch"],
                    virtual_packages=[
                        rattler.GenericVirtualPackage(
                            rattler.PackageName(n), rattler.Version(v), rattler.BuildString(b)
                        )
                        for n, v, b in virtual
                    ],
                    exclude_newer=dt.datetime.fromisoformat(newer) if newer else None,
                )
                for platform, specs, virtual, newer in solve_requests
            )
        )

    asyncio.run(run())
    sys.stdout.flush()
    os._exit(0)  # as scistacks leaves once rattler is loaded (its threads, at shutdown)


if __name__ == "__main__":
    _main(sys.argv[1], json.loads(sys.argv[2]))
