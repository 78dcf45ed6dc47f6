#!/usr/bin/env python3
"""Unpack the bundled conda-forge snapshot (tests/data) into build/ and print its folder.

Idempotent: files are unpacked only when missing or older than their .xz source.
Usage: scistacks lock --all --channel-map conda-forge=$(python scripts/unpack-snapshot.py)
"""

from __future__ import annotations

import lzma
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "data" / "conda-forge-snapshot"


def unpack(target: Path | None = None) -> Path:
    target = Path(
        target
        or os.environ.get("SCISTACKS_SNAPSHOT_DIR")
        or ROOT / "build" / "conda-forge-snapshot"
    )
    for packed in sorted(SOURCE.glob("*/repodata.json.xz")):
        out = target / packed.parent.name / "repodata.json"
        if out.is_file() and out.stat().st_mtime >= packed.stat().st_mtime:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(lzma.decompress(packed.read_bytes()))
        os.replace(tmp, out)
    return target


if __name__ == "__main__":
    print(unpack(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
