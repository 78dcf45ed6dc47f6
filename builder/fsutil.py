"""Atomic file writes: a reader never sees half a lockfile, image context or profile."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


def _unchanged(path: Path, raw: bytes, mode: int | None) -> bool:
    return (
        path.is_file()
        and path.read_bytes() == raw
        and (mode is None or (path.stat().st_mode & 0o777) == mode)
    )


def _temp_beside(path: Path, raw: bytes, mode: int | None, pending: list) -> str:
    """A synced temp file next to ``path`` holding ``raw``, recorded in ``pending``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    pending.append((tmp, path))
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode if mode is not None else 0o644)
    return tmp


def write_atomic(path: str | os.PathLike, data: str | bytes, mode: int | None = None) -> bool:
    """Write ``data`` to ``path`` via a temp file and rename.

    Returns True when the file changed, False when it already held ``data``
    (so unchanged outputs keep their mtime and stages can be skipped).
    """
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    if _unchanged(path, raw, mode):
        return False
    pending: list[tuple[str, Path]] = []
    try:
        os.replace(_temp_beside(path, raw, mode, pending), path)
    except BaseException:
        _discard(pending)
        raise
    return True


def write_all_atomic(
    items: list[tuple[Path, str | bytes, int | None]], *, shown: str, error=None, before_rename=None
) -> set[Path]:
    """Write several files as one: every changed file goes to a temp file next to it
    first, and only when all of them are written (and synced) are they renamed into place.
    A full disk or any other failure removes the temp files and leaves every old file as
    it was; it is raised as one ``error`` naming ``shown`` (the folder). Returns the paths
    that changed."""
    from builder.errors import ScistacksError

    error = error or ScistacksError
    pending: list[tuple[str, Path]] = []
    try:
        for path, data, mode in items:
            path = Path(path)
            raw = data.encode() if isinstance(data, str) else data
            if not _unchanged(path, raw, mode):
                _temp_beside(path, raw, mode, pending)
        if before_rename is not None and pending:
            before_rename()
        for tmp, path in pending:
            os.replace(tmp, path)
    except OSError as exc:
        _discard(pending)
        raise error(f"cannot write: {exc.strerror or exc}", file=shown) from None
    except BaseException:
        _discard(pending)
        raise
    return {path for _, path in pending}


def _discard(pending: list[tuple[str, Path]]) -> None:
    for tmp, _ in pending:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# What a full disk, a quota or a read-only mount raise: the folder is at fault, not the input.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


@contextlib.contextmanager
def out_of_space_as(error, shown: str):
    """Re-raise a full-disk ``OSError`` inside the block as one ``error`` naming ``shown``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        raise error(f"cannot write: {exc.strerror}", file=shown) from None


def shown(path: Path) -> str:
    """A path as users should read it (a log's): relative to the current folder when inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)
