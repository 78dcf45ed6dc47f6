"""Fault drills: hooks the tests use to stop or break a run at a chosen point.

``SCISTACKS_FAULT=lock-write[:SECONDS]`` pauses a lock or bump while it writes (the new
files written next to the old ones, not yet renamed over them), so a test can ``kill -9``
it there; ``SCISTACKS_FAULT=solver-raise[:PLATFORM]`` makes the solver raise mid-solve
(on PLATFORM only, the others solving). Unset, they do nothing.
"""

from __future__ import annotations

import os
import sys
import time

VARIABLE = "SCISTACKS_FAULT"


def _wanted(point: str) -> str | None:
    value = os.environ.get(VARIABLE, "")
    name, _, arg = value.partition(":")
    return arg if name == point else None


def pause(point: str) -> None:
    arg = _wanted(point)
    if arg is not None:
        print(f"fault drill: paused at {point}", file=sys.stderr, flush=True)
        time.sleep(float(arg or 60))


def maybe_raise(point: str, where: str = "") -> None:
    arg = _wanted(point)
    if arg is not None and arg in ("", where):
        raise RuntimeError(f"fault drill: {point} {where}".strip())
