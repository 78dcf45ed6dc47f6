"""One error type for everything a user can get wrong.

The CLI prints it as a single line (``FILE: FIELD: message``) and exits non-zero,
so bad input never ends in a traceback.
"""

from __future__ import annotations

import os


class ScistacksError(Exception):
    """A problem the user can fix, located by file and field."""

    exit_code = 1

    def __init__(
        self, message: str, *, file: str | os.PathLike | None = None, field: str | None = None
    ):
        self.message = " ".join(str(message).split())  # always one line
        self.file = os.fspath(file) if file is not None else None
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        return ": ".join([*parts, self.message])


class SpecError(ScistacksError):
    """A distribution spec is invalid."""


class LockError(ScistacksError):
    """A lock could not be made, read or checked."""


class BuildError(ScistacksError):
    """An image could not be built."""


class SmokeError(ScistacksError):
    """Smoke tests could not run (not: a notebook failed)."""


class PublishError(ScistacksError):
    """Publishing to a registry failed or was refused."""


class HubError(ScistacksError):
    """A hub config or profile problem."""


class RecordError(ScistacksError):
    """A stage record (``build/images``, ``build/smoke``, ``build/publish``) is missing or
    damaged."""


def last_line(text: str | bytes | None, default: str = "") -> str:
    """The last non-blank line of a tool's output, stripped: what an error quotes of it."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else default
