#!/usr/bin/env python3
"""How much does `scistacks lock` add to a bare rattler.solve, as whole processes?

Locks pangeo (which relocks its whole solve group: base, pangeo, r-edu, gpu-ml) for
linux-64 and linux-aarch64 against the bundled conda-forge snapshot with
`python -m builder lock pangeo`, and in the same run times a process that only imports
rattler and solves the same specs (the group's union, per platform, side by side with
one gateway, like the tool; benchmarks/_bare_solve.py). Start-up counts on both sides.
Prints medians and the ratio (goal: <= 1.3).
"""

from __future__ import annotations

import runpy
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _bare_solve import bare, requests, timed  # noqa: E402

from builder.lock import ChannelMap  # noqa: E402
from builder.project import Project  # noqa: E402
from builder.spec import Catalog  # noqa: E402

ROUNDS = 7
PLATFORMS = ("linux-64", "linux-aarch64")


def main() -> None:
    snapshot = runpy.run_path(str(REPO / "scripts" / "unpack-snapshot.py"))["unpack"]()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("base", "pangeo", "r-edu", "gpu-ml"):
            shutil.copytree(REPO / "distributions" / name, root / "distributions" / name)
        catalog = Catalog.load(Project.at(root))
        channel = ChannelMap.from_sources(root, [f"conda-forge={snapshot}"]).source_url(
            "conda-forge"
        )
        group = catalog.group_members(catalog.solve_group("pangeo"))
        union_requests = requests(catalog, group, PLATFORMS)
        pangeo_requests = requests(catalog, ["pangeo"], PLATFORMS)
        command = [sys.executable, "-m", "builder", "--root", str(root), "lock", "pangeo"]
        command += ["--channel-map", f"conda-forge={snapshot}"]

        tool, union, alone = [], [], []
        for _ in range(ROUNDS):
            shutil.rmtree(root / "lockfiles", ignore_errors=True)
            tool.append(timed(command))
            union.append(bare(channel, union_requests))
            alone.append(bare(channel, pangeo_requests))
        packages = sum(
            1
            for line in (root / "lockfiles" / "pangeo" / "conda-lock.yml").read_text().splitlines()
            if line.startswith("- name: ")
        )

    t, u, a = (statistics.median(x) for x in (tool, union, alone))
    print(
        f"pangeo: {packages} packages over linux-64 + linux-aarch64; solve group: {', '.join(group)}"
    )
    print(
        f"python -m builder lock pangeo (solve group, 4 lockfiles x 3 files): {t:.3f} s (median of {ROUNDS})"
    )
    print(f"bare rattler.solve process, the group's union specs, 2 platforms:  {u:.3f} s")
    print(f"bare rattler.solve process, pangeo's own specs, 2 platforms:       {a:.3f} s")
    print(f"ratio tool / bare solve of the same specs: {t / u:.2f} (goal <= 1.3)")
    print(
        f"ratio tool / bare solve of pangeo alone:   {t / a:.2f} (the price of family consistency)"
    )


if __name__ == "__main__":
    main()
