#!/usr/bin/env python3
"""Rebuild the demo distribution's PyPI wheels.

    python scripts/build-demo-wheels.py            # rewrite distributions/demo/wheels/
    python scripts/build-demo-wheels.py --check    # fail if the committed wheels are stale
    python scripts/build-demo-wheels.py --out DIR  # write elsewhere

Each folder of distributions/demo/pypi-src/ is a small pure-Python project, built with
``pip wheel`` through its own (pinned) build backend, flit_core, with SOURCE_DATE_EPOCH
fixed: the same sources always give byte-identical wheels. pip fetches flit_core from
PyPI for the isolated build; the lock and the image build read only the wheels.
[tool.scistacks.pypi-index-map] in pyproject.toml serves the folder as the demo's index.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder.image.layers import DEFAULT_EPOCH  # noqa: E402

SRC = ROOT / "distributions" / "demo" / "pypi-src"
OUT = ROOT / "distributions" / "demo" / "wheels"


def build(out: Path) -> list[Path]:
    """Every project of SRC as a wheel in ``out``."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(DEFAULT_EPOCH), "PIP_NO_CACHE_DIR": "1"}
    for project in sorted(p for p in SRC.iterdir() if (p / "pyproject.toml").is_file()):
        with tempfile.TemporaryDirectory(prefix="demo-wheel-src-") as tmp:
            # a copy: a build must not leave build/ or __pycache__ in the sources
            src = Path(tmp) / project.name
            shutil.copytree(project, src, ignore=shutil.ignore_patterns("__pycache__"))
            subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                check=True,
                env=env,
            )
    return sorted(out.glob("*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="compare with --out, write nothing")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    with tempfile.TemporaryDirectory(prefix="demo-wheels-") as tmp:
        try:
            built = build(Path(tmp))
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"build-demo-wheels: {exc}", file=sys.stderr)
            return 1
        if args.check:
            have = {p.name: p.read_bytes() for p in out.glob("*.whl")} if out.is_dir() else {}
            want = {p.name: p.read_bytes() for p in built}
            stale = sorted(n for n in have.keys() | want.keys() if have.get(n) != want.get(n))
            if stale:
                print(f"stale demo wheels: {', '.join(stale)}; run {Path(__file__).name}")
                return 1
            print(f"{len(want)} demo wheels up to date")
            return 0
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.whl"):
            old.unlink()
        for wheel in built:
            shutil.copyfile(wheel, out / wheel.name)
            print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/{wheel.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
