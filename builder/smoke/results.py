"""What a smoke run found: one ``Check`` per testcase, the ``Target`` image of each
platform, the ``SmokeReport`` of the run; and the text clean-up every check's message goes
through (tracebacks carry terminal colours and control characters)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from builder import errors

TRACEBACK_LINES = 20  # of a traceback or a log's end, kept in a check's details

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not allowed in XML 1.0


def clean(text: str) -> str:
    """Terminal colours and control characters out (tracebacks carry both)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(clean(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def last_line(text: str) -> str:
    return errors.last_line(clean(text))


@dataclass
class Check:
    """One testcase: a notebook, an import or a hub check, on one platform."""

    platform: str
    kind: str  # image | notebook | import | imports | hub
    name: str
    status: str = "pass"  # pass | fail | skip
    duration: float = 0.0
    message: str = ""  # one line
    details: str = ""  # the failing cell's source, a traceback's end, a server log
    cell: int | None = None  # 1-based index in the notebook's cells
    cell_source: str | None = None
    output: str | None = None  # executed notebook, relative to the results folder
    log: str | None = None
    seconds: float | None = None  # import time of a module

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def to_dict(self) -> dict:
        out = {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "duration": round(self.duration, 3),
        }
        for key in ("message", "details", "cell", "cell_source", "output", "log"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        if self.seconds is not None:
            out["seconds"] = round(self.seconds, 4)
        return out


@dataclass
class Target:
    """The image tested for one platform, or why there is none."""

    platform: str  # conda subdir
    oci_platform: str
    ref: str | None
    image_id: str | None = None
    lock_hash: str | None = None
    problem: str | None = None  # nothing can run on this platform
    entrypoint: list[str] | None = None
    jupyter: str | None = None
    nbconvert: str | None = None
    python: str | None = None
    emulated: bool = False

    @property
    def label(self) -> str:
        return f"{self.ref} ({self.oci_platform})"


@dataclass
class SmokeReport:
    distribution: str
    targets: list[Target]
    checks: list[Check]
    results_dir: Path
    duration: float
    lock_hash: str | None = None
    imports: dict[str, dict] = field(default_factory=dict)  # platform -> python, modules
    # seconds from the start of the run until the platform's last check ended
    wall: dict[str, float] = field(default_factory=dict)

    def platform_checks(self, platform: str) -> list[Check]:
        return [c for c in self.checks if c.platform == platform]

    def platform_passed(self, platform: str) -> bool:
        checks = self.platform_checks(platform)
        return bool(checks) and not any(c.failed for c in checks)

    @property
    def passed(self) -> bool:
        return bool(self.targets) and all(self.platform_passed(t.platform) for t in self.targets)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]
