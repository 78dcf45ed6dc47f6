#!/usr/bin/env python3
"""How much does `scistacks lock` add to a bare rattler.solve, as whole processes?

Locks pangeo (which relocks its whole solve group: base, pangeo, r-edu, gpu-ml) for
linux-64 and linux-aarch64 against the bundled conda-forge snapshot with
`python -m builder lock pangeo`, and in the same run times a process that only imports
rattler and solves the same specs (the group's union, per platform, side by side with
one gateway, like the tool; benchmarks/_bare_solve.py). Start-up counts on both sides.
Prints medians and the ratio (goal: <= 1.3). Then what the PyPI step adds to a lock of
base (``pypi_step``; ``--pypi-only`` runs that alone).
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


# ---------------------------------------------------------------- the PyPI step (issue 15)
#
# What a pip: section adds to a lock of base: base with a small binder-style pip: section
# (ipyleaflet; conda provides part of what it needs, ipywidgets and traitlets, as
# constraints), uv's cache warm (one lock first), on two indexes:
# - the real PyPI: network-bound where a proxy marks its pages uncacheable (uv then
#   revalidates every page and wheel metadata on each run);
# - a mirror of the same wheels in a project folder ([tool.scistacks.pypi-index-map]),
#   served on 127.0.0.1: the step's own cost.
# Each: whole `scistacks lock base` processes with and without the section (the
# difference is what users wait for), and the step alone in-process on base's committed
# conda lock (builder.lock.pypi.resolve_members, 2 platforms side by side). Goal <= 0.5 s.

PYPI_REQUIREMENTS = ["ipyleaflet"]
PYPI_EXCLUDE_NEWER = "2025-06-30"
MIRROR = "https://pypi-mirror.invalid/simple"


def _pypi_projects(tmp: Path, mirror: Path | None) -> dict[str, Path]:
    import yaml

    roots = {}
    for label, pip in (("conda only", []), ("with pip:", PYPI_REQUIREMENTS)):
        root = tmp / f"{label.replace(' ', '-').strip(':')}-{'mirror' if mirror else 'pypi'}"
        shutil.copytree(REPO / "distributions" / "base", root / "distributions" / "base")
        spec = root / "distributions" / "base" / "distribution.yml"
        data = yaml.safe_load(spec.read_text())
        spec.write_text(yaml.safe_dump({**data, "pip": pip} if pip else data))
        if mirror:
            (root / "pyproject.toml").write_text(
                f'[tool.scistacks]\npypi-index = "{MIRROR}"\n'
                f'[tool.scistacks.pypi-index-map]\n"{MIRROR}" = "{mirror}"\n'
            )
        roots[label] = root
    return roots


def _pypi_figures(
    roots: dict[str, Path], snapshot: Path, rounds: int
) -> tuple[float, float, float]:
    """(lock without pip:, lock with pip:, the step alone), medians in seconds."""
    import datetime as dt
    import time

    from builder.lock import condalock, pypi
    from builder.lock.pypi_index import PypiIndexMap

    options = ["--channel-map", f"conda-forge={snapshot}", "--exclude-newer", PYPI_EXCLUDE_NEWER]
    commands = {
        label: [sys.executable, "-m", "builder", "--root", str(root), "lock", "base", *options]
        for label, root in roots.items()
    }
    timed(commands["with pip:"])  # warms uv's cache and the metadata cache
    whole: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(rounds):
        for label, command in commands.items():
            whole[label].append(timed(command))
    project = Project.at(roots["with pip:"])
    catalog = Catalog.load(project)
    committed = condalock.read(REPO / "lockfiles" / "base" / "conda-lock.yml")
    options = pypi.PypiOptions(
        PypiIndexMap.from_sources(project.root),
        exclude_newer=dt.datetime.fromisoformat(PYPI_EXCLUDE_NEWER).replace(tzinfo=dt.UTC),
        metadata_cache=project.pypi_metadata_cache,
    )
    step = []
    for _ in range(rounds):
        start = time.perf_counter()
        pypi.resolve_members(project, catalog, ["base"], {"base": committed.packages}, options)
        step.append(time.perf_counter() - start)
    return (*(statistics.median(whole[label]) for label in commands), statistics.median(step))


def pypi_step(rounds: int = 5) -> None:
    import urllib.request

    from builder.lock import condalock, pypi_names

    snapshot = runpy.run_path(str(REPO / "scripts" / "unpack-snapshot.py"))["unpack"]()
    with tempfile.TemporaryDirectory() as tmp:
        real = _pypi_projects(Path(tmp), None)
        try:
            figures = {"the real PyPI": _pypi_figures(real, snapshot, rounds)}
        except Exception as exc:
            print(f"PyPI step: skipped, the real PyPI is needed to fill the mirror ({exc})")
            return
        locked = condalock.read(real["with pip:"] / "lockfiles" / "base" / "conda-lock.yml")
        mirror = Path(tmp, "mirror")
        mirror.mkdir()
        for wheel in {w.url: w for ws in locked.pypi.values() for w in ws}.values():
            urllib.request.urlretrieve(wheel.url, mirror / wheel.file_name)
        figures["a mirror folder"] = _pypi_figures(
            _pypi_projects(Path(tmp), mirror), snapshot, rounds
        )

    committed = condalock.read(REPO / "lockfiles" / "base" / "conda-lock.yml")
    wheels = sorted({w.name for ws in locked.pypi.values() for w in ws})
    provided = len(pypi_names.provided(committed.packages["linux-64"]))
    print(
        f"base + pip: {PYPI_REQUIREMENTS}: {len(wheels)} PyPI packages per platform "
        f"({', '.join(wheels)}); {provided} conda-provided constraints per platform"
    )
    for index, (conda, with_pip, step) in figures.items():
        print(f"{index} (medians of {rounds}):")
        print(
            f"  python -m builder lock base, conda only: {conda:.3f} s, with pip: {with_pip:.3f} s"
        )
        print(f"  what the PyPI step adds to the process:   {with_pip - conda:.3f} s (goal <= 0.5)")
        print(f"  the step alone (2 platforms):             {step:.3f} s")


if __name__ == "__main__":
    if "--pypi-only" not in sys.argv:
        main()
    pypi_step()
