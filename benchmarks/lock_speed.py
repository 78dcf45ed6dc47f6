#!/usr/bin/env python3
"""How much does `scistacks lock` add to a bare rattler.solve?

Locks pangeo (which relocks its whole solve group: base, pangeo, r-edu, gpu-ml) for
linux-64 and linux-aarch64 against the bundled conda-forge snapshot, and in the same run
times bare `rattler.solve` calls of the same specs (the group's union, per platform) with
a fresh gateway each, like the tool. Prints medians and the ratio (goal: <= 1.25).
"""

from __future__ import annotations

import asyncio
import runpy
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import rattler

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from builder.lock import ChannelMap, lock  # noqa: E402
from builder.lock.platforms import virtual_packages  # noqa: E402
from builder.project import Project  # noqa: E402
from builder.spec import Catalog  # noqa: E402

ROUNDS = 5


def bare_solve(channel: str, requests: list[tuple[str, list[str], dict]]) -> float:
    async def run():
        gateway = rattler.Gateway()
        for platform, specs, virtual in requests:
            await rattler.solve(
                sources=[rattler.Channel(channel)],
                specs=specs,
                gateway=gateway,
                platforms=[platform, "noarch"],
                virtual_packages=virtual_packages(platform, virtual),
            )

    start = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - start


def main() -> None:
    snapshot = runpy.run_path(str(REPO / "scripts" / "unpack-snapshot.py"))["unpack"]()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("base", "pangeo", "r-edu", "gpu-ml"):
            shutil.copytree(REPO / "distributions" / name, root / "distributions" / name)
        project = Project.at(root)
        catalog = Catalog.load(project)
        cmap = ChannelMap.from_sources(root, [f"conda-forge={snapshot}"])
        group = catalog.group_members(catalog.solve_group("pangeo"))
        union_requests, pangeo_requests = [], []
        for platform in ("linux-64", "linux-aarch64"):
            members = [catalog.get(m) for m in group if platform in catalog.get(m).platforms]
            specs = list(dict.fromkeys(s for m in members for s in m.constraints))
            virtual = {k: v for m in members for k, v in m.virtual_packages.items()}
            union_requests.append((platform, specs, virtual))
            pangeo = catalog.get("pangeo")
            pangeo_requests.append(
                (platform, list(pangeo.constraints), dict(pangeo.virtual_packages))
            )
        channel = cmap.source_url("conda-forge")

        tool, union, alone = [], [], []
        packages = 0
        for _ in range(ROUNDS):
            shutil.rmtree(root / "lockfiles", ignore_errors=True)
            start = time.perf_counter()
            results = lock(project, catalog, ["pangeo"], cmap)
            tool.append(time.perf_counter() - start)
            packages = sum(
                r.counts.get(p, 0) for r in results if r.name == "pangeo" for p in r.counts
            )
            union.append(bare_solve(channel, union_requests))
            alone.append(bare_solve(channel, pangeo_requests))

    t, u, a = (statistics.median(x) for x in (tool, union, alone))
    print(
        f"pangeo: {packages} packages over linux-64 + linux-aarch64; solve group: {', '.join(group)}"
    )
    print(
        f"scistacks lock pangeo (solve group, closure, 4 lockfiles x 3 files): {t:.3f} s (median of {ROUNDS})"
    )
    print(f"bare rattler.solve of the group's union specs, 2 platforms:          {u:.3f} s")
    print(f"bare rattler.solve of pangeo's own specs, 2 platforms:               {a:.3f} s")
    print(f"ratio tool / bare solve of the same specs: {t / u:.2f} (goal <= 1.25)")
    print(
        f"ratio tool / bare solve of pangeo alone:   {t / a:.2f} (the price of family consistency)"
    )


if __name__ == "__main__":
    main()
