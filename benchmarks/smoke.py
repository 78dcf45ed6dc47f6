#!/usr/bin/env python3
"""Do the smoke stage's notebooks really run side by side?

Runs N demo-like notebooks inside the demo image (each reads the demo's stations through
``scistacks_demo`` and runs ``demo-stats``); SLEEPERS of them also sleep SLEEP seconds.
Times the slowest one alone, then all N in one ``smoke`` run, and prints the ratio of the
two wall times (goal: <= 1.2). Both runs include the image probe and the result files,
as users pay for them.

    python benchmarks/smoke.py [--image REF] [--notebooks 8] [--sleepers 3] [--sleep 15] [--jobs N]

The default image is linux-64's from build/images/demo.json (``scistacks build demo``).
``--jobs`` defaults to N: the sleeping notebooks wait rather than compute, so they need
slots, not cores. The run with ``smoke``'s own default (the CPU count) is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from builder.project import Project  # noqa: E402
from builder.smoke import smoke  # noqa: E402

DEMO_CELLS = [
    "import subprocess, shutil\nimport scistacks_demo\nrows = scistacks_demo.load_stations()\n"
    "print(len(rows), scistacks_demo.summary(rows, 'temperature_c')['mean'])",
    "print(subprocess.run([shutil.which('demo-stats')], capture_output=True, text=True, check=True).stdout)",
]


def write_notebook(path: Path, sleep: float) -> None:
    cells = [new_code_cell(c) for c in DEMO_CELLS]
    if sleep:
        cells.append(new_code_cell(f"import time\ntime.sleep({sleep})"))
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def project(root: Path, notebooks: dict[str, float]) -> Project:
    folder = root / "distributions" / "bench"
    for name, sleep in notebooks.items():
        write_notebook(folder / "notebooks" / name, sleep)
    spec = {
        "name": "bench",
        "channels": ["conda-forge"],
        "platforms": ["linux-64"],
        "dependencies": ["python"],
        "notebooks": [f"notebooks/{n}" for n in notebooks],
    }
    (folder / "distribution.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return Project.at(root)


def timed(root: Path, notebooks: dict[str, float], image: str, jobs: int | None, results: Path):
    proj = project(root, notebooks)
    start = time.perf_counter()
    report = smoke(proj, "bench", images=[image], jobs=jobs, results_dir=results)
    wall = time.perf_counter() - start
    if not report.passed:
        failed = "; ".join(f"{c.name}: {c.message}" for c in report.failures)
        sys.exit(f"a notebook failed, the benchmark means nothing: {failed}")
    return wall, {c.name: c.duration for c in report.checks if c.kind == "notebook"}


def default_image() -> str:
    record = REPO / "build" / "images" / "demo.json"
    try:
        return json.loads(record.read_text())["platforms"]["linux-64"]["ref"]
    except (OSError, KeyError, ValueError):
        sys.exit(f"no demo image in {record}: run `scistacks build demo` or pass --image REF")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="a demo image (default: build/images/demo.json's linux-64)")
    parser.add_argument("--notebooks", type=int, default=8)
    parser.add_argument("--sleepers", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=15.0)
    parser.add_argument("--jobs", type=int, help="parallel containers (default: --notebooks)")
    args = parser.parse_args()
    image = args.image or default_image()
    jobs = args.jobs or args.notebooks
    quick = args.notebooks - args.sleepers
    # the sleepers come last in the spec: a first run knows no durations and goes by order
    notebooks = {f"nb{i:02d}.ipynb": 0.0 for i in range(quick)}
    notebooks |= {f"nb{i:02d}-sleeps.ipynb": args.sleep for i in range(quick, args.notebooks)}
    slowest = f"nb{args.notebooks - 1:02d}-sleeps.ipynb" if args.sleepers else "nb00.ipynb"
    print(
        f"image {image}; {args.notebooks} notebooks, {args.sleepers} of them sleep "
        f"{args.sleep:.0f} s; {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        single, _ = timed(tmp / "single", {slowest: notebooks[slowest]}, image, 1, tmp / "r1")
        print(f"slowest notebook alone:                {single:6.1f} s")
        rows = [
            (f"all {args.notebooks}, --jobs {jobs}, first run", jobs, tmp / "r2"),
            (f"all {args.notebooks}, --jobs {jobs}, again (longest first)", jobs, tmp / "r2"),
            (
                f"all {args.notebooks}, --jobs {os.cpu_count()} (default), first run",
                None,
                tmp / "r3",
            ),
        ]
        for label, n, results in rows:
            wall, durations = timed(tmp / "all", notebooks, image, n, results)
            spread = sorted(durations.values())
            print(
                f"{label + ':':<38} {wall:6.1f} s   ratio {wall / single:.2f}"
                f"   (notebooks {spread[0]:.1f} .. {spread[-1]:.1f} s)"
            )
    print("goal: ratio <= 1.2 with parallel execution")


if __name__ == "__main__":
    main()
