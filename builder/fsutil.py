"""Atomic file writes: a reader never sees half a lockfile, image context or profile."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: str | bytes, mode: int | None = None) -> bool:
    """Write ``data`` to ``path`` via a temp file and rename.

    Returns True when the file changed, False when it already held ``data``
    (so unchanged outputs keep their mtime and stages can be skipped).
    """
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    if (
        path.is_file()
        and path.read_bytes() == raw
        and (mode is None or (path.stat().st_mode & 0o777) == mode)
    ):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True
