#!/usr/bin/env python3
"""How long does ``scistacks release demo`` take when nothing changed? (goal: < 3 s)

Runs the release once to make everything current (this may build, smoke and push), then
RUNS more times and prints the seconds of each no-op run and the best, as users pay for
them (a fresh interpreter each time).

    python benchmarks/release_noop.py [--root DIR] [--registry localhost:5000/scistacks] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def release(root: Path, registry: str) -> tuple[float, subprocess.CompletedProcess]:
    return scistacks(root, "release", "demo", "--registry", registry)


def scistacks(root: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(root), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return time.monotonic() - started, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO)
    parser.add_argument("--registry", default="localhost:5000/scistacks")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    seconds, proc = release(args.root, args.registry)
    if proc.returncode != 0:
        sys.exit(f"first release failed: {proc.stderr.strip()}")
    print(f"first release: {seconds:.2f}s ({proc.stdout.strip()})")
    times = []
    for _ in range(args.runs):
        seconds, proc = release(args.root, args.registry)
        if proc.returncode != 0 or not proc.stdout.startswith("unchanged:"):
            sys.exit(f"not a no-op: {proc.stdout.strip()} {proc.stderr.strip()}")
        times.append(seconds)
    print("no-op release: " + ", ".join(f"{t:.2f}s" for t in times) + f" (best {min(times):.2f}s)")
    # a machine that never built it (a fresh CI runner): the registry alone says "unchanged"
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "checkout"
        shutil.copytree(args.root, fresh, ignore=shutil.ignore_patterns("build", ".git", ".nox"))
        fresh_times = []
        for _ in range(args.runs):
            shutil.rmtree(fresh / "build", ignore_errors=True)
            seconds, proc = release(fresh, args.registry)
            if proc.returncode != 0 or not proc.stdout.startswith("unchanged:"):
                sys.exit(f"fresh checkout not a no-op: {proc.stdout.strip()} {proc.stderr.strip()}")
            fresh_times.append(seconds)
    print(f"no-op release, fresh checkout (no build/, no record): best {min(fresh_times):.2f}s")
    # baseline: what any command pays (interpreter, imports, the lock read and checked)
    base = min(scistacks(args.root, "lock", "--check", "demo")[0] for _ in range(args.runs))
    print(f"baseline `scistacks lock --check demo`: {base:.2f}s")
    print(f"ratio no-op release / baseline: {min(times) / base:.2f} (goal: release < 3 s)")


if __name__ == "__main__":
    main()
