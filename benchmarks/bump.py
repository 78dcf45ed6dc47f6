#!/usr/bin/env python3
"""How little does `scistacks bump` move, and what does it cost?

Against the bundled conda-forge snapshot:
1. lock pangeo's family (base, pangeo, r-edu, gpu-ml) as of OLD (records newer excluded);
2. at LATER, bump one leaf package of pangeo (nothing in the family depends on it), and,
   for contrast, numpy (which other packages pin), and count per platform the packages
   whose version or build changed in pangeo's lock;
3. relock the same family from scratch at LATER (a full re-solve) and count the same;
4. time the bump end to end as a whole process (`python -m builder bump pangeo PKG`:
   start-up, read locks, solve both platforms, write every relocked file, print the diff)
   against a process that only imports rattler and solves the same specs
   (benchmarks/_bare_solve.py), in the same run (goal: <= 1.5).
"""

from __future__ import annotations

import datetime as dt
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

from builder.lock import ChannelMap, lock  # noqa: E402
from builder.lock.condalock import read  # noqa: E402
from builder.project import Project  # noqa: E402
from builder.spec import Catalog  # noqa: E402

FAMILY = ("base", "pangeo", "r-edu", "gpu-ml")
PLATFORMS = ("linux-64", "linux-aarch64")
OLD = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
LEAF = "hvplot"
ROUNDS = 5


def state(root: Path, name: str = "pangeo") -> dict[str, dict[str, tuple[str, str]]]:
    locked = read(root / "lockfiles" / name / "conda-lock.yml")
    return {p: {x.name: (x.version, x.build) for x in pkgs} for p, pkgs in locked.packages.items()}


def moved(before: dict, after: dict) -> dict[str, list[str]]:
    return {
        p: sorted(
            n for n in before[p].keys() | after[p].keys() if before[p].get(n) != after[p].get(n)
        )
        for p in before
    }


def main() -> None:
    snapshot = runpy.run_path(str(REPO / "scripts" / "unpack-snapshot.py"))["unpack"]()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp, "old")
        for name in FAMILY:
            shutil.copytree(REPO / "distributions" / name, old / "distributions" / name)
        project = Project.at(old)
        catalog = Catalog.load(project)
        cmap = ChannelMap.from_sources(old, [f"conda-forge={snapshot}"])
        lock(project, catalog, list(FAMILY), cmap, exclude_newer=OLD)
        before = state(old)
        dependents = [
            p.name
            for pkgs in read(old / "lockfiles" / "pangeo" / "conda-lock.yml").packages.values()
            for p in pkgs
            if any(d.split()[0] == LEAF for d in p.depends)
        ]
        assert not dependents, f"{LEAF} is not a leaf: {dependents}"

        def fresh_copy(label: str) -> Path:
            root = Path(tmp, label)
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(old, root)
            return root

        def scistacks(root: Path, *args: str) -> float:
            later = ["--exclude-newer", LATER.date().isoformat()]
            mapped = ["--channel-map", f"conda-forge={snapshot}"]
            return timed(
                [sys.executable, "-m", "builder", "--root", str(root), *args, *later, *mapped]
            )

        def run_bump(root: Path, package: str) -> float:
            return scistacks(root, "bump", "pangeo", package)

        def run_full(root: Path) -> float:
            return scistacks(root, "lock", *FAMILY)

        family = requests(catalog, list(FAMILY), PLATFORMS, LATER)
        channel = cmap.source_url("conda-forge")

        times: dict[str, list[float]] = {"bare": [], "leaf": [], "numpy": [], "full": []}
        changes = {}
        for _ in range(ROUNDS):
            times["bare"].append(bare(channel, family))
            for label, package in (("leaf", LEAF), ("numpy", "numpy")):
                root = fresh_copy(label)
                times[label].append(run_bump(root, package))
                changes[label] = moved(before, state(root))
            root = fresh_copy("full")
            times["full"].append(run_full(root))
            changes["full"] = moved(before, state(root))

    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"pangeo's family locked as of {OLD.date()}, then changed as of {LATER.date()} "
        "(bundled conda-forge snapshot)."
    )
    print("Packages whose version or build changed in pangeo's lock:")
    width = 40
    print(f"{'':{width}}" + "".join(f"{p:>15}" for p in PLATFORMS))
    print(f"{'packages in the lock':{width}}" + "".join(f"{len(before[p]):>15}" for p in PLATFORMS))
    rows = (
        (f"bump pangeo {LEAF} (a leaf)", "leaf"),
        ("bump pangeo numpy (pinned by others)", "numpy"),
        ("full re-solve at the same date", "full"),
    )
    for label, key in rows:
        print(f"{label:{width}}" + "".join(f"{len(changes[key][p]):>15}" for p in PLATFORMS))
    for key in ("leaf", "numpy"):
        moves = "; ".join(f"{p}: {', '.join(changes[key][p])}" for p in PLATFORMS)
        print(f"  moved by the {key} bump: {moves}")
    print(f"Wall time, median of {ROUNDS} (both platforms):")
    lines = (
        ("bare rattler.solve (a process), family", "bare"),
        (f"scistacks bump pangeo {LEAF} (end to end)", "leaf"),
        ("scistacks bump pangeo numpy (end to end)", "numpy"),
        ("scistacks lock of the family (no diff)", "full"),
    )
    for label, key in lines:
        ratio = "" if key == "bare" else f"   ratio to bare solve {med[key] / med['bare']:.2f}"
        print(f"  {label:{width + 4}}{med[key]:.3f} s{ratio}")


if __name__ == "__main__":
    main()
