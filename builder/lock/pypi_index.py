"""PyPI indexes: the canonical URL in specs and lockfiles, a folder of wheels for solving.

The PyPI step reads one index (default PyPI): ``--pypi-index URL``, else
``[tool.scistacks] pypi-index`` in pyproject.toml. Like a channel map, a
``[tool.scistacks.pypi-index-map]`` entry says that an index is a folder of the project:
scistacks serves it on 127.0.0.1 while uv resolves, and the lock names each wheel under
the canonical index (``wheel_url``), so no port or local path enters a lockfile. A build
reads such a wheel straight from the folder (``local_wheel``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

from builder.errors import LockError
from builder.lock.channels import read_pyproject

DEFAULT_INDEX = "https://pypi.org/simple"
FILES = "files/"  # where an index's wheels live, beside its simple/ pages


def canonical_index(url: str) -> str:
    """An index URL as recorded: no trailing slash (``https://pypi.org/simple``)."""
    text = url.strip()
    if not text.startswith(("http://", "https://", "file://")):
        raise LockError(f"not an index URL: {url!r} (expected https://HOST/simple)")
    return text.rstrip("/")


def files_url(index: str) -> str:
    """The folder URL the wheels of a mapped index are named under: its ``files/``
    beside ``simple/`` (``https://host/simple`` -> ``https://host/files/``)."""
    return urljoin(canonical_index(index) + "/", "../" + FILES)


def wheel_url(index: str, file_name: str) -> str:
    """The URL a lock records for a file of a mapped index."""
    return files_url(index) + file_name


def _table(config: dict, key: str, shown: str) -> dict:
    value = config.get(key, {})
    if not isinstance(value, dict):
        raise LockError(
            f"expected a table, got a {type(value).__name__}", file="pyproject.toml", field=shown
        )
    return value


@dataclass
class PypiIndexMap:
    """The index the PyPI step reads, and canonical index URL -> folder of wheels."""

    index: str = DEFAULT_INDEX
    folders: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def from_sources(cls, root: Path, index: str | None = None) -> PypiIndexMap:
        """pyproject.toml's ``[tool.scistacks] pypi-index`` and ``pypi-index-map``, then
        ``--pypi-index`` (``index``)."""
        config = read_pyproject(root)
        tool = _table(_table(config, "tool", "tool"), "scistacks", "tool.scistacks")
        out = cls()
        configured = tool.get("pypi-index")
        if configured is not None:
            if not isinstance(configured, str):
                raise LockError(
                    "expected an index URL string",
                    file="pyproject.toml",
                    field="[tool.scistacks] pypi-index",
                )
            out.index = _checked(configured, "pyproject.toml", "[tool.scistacks] pypi-index")
        for url, folder in _table(
            tool, "pypi-index-map", "[tool.scistacks] pypi-index-map"
        ).items():
            shown = f"[tool.scistacks.pypi-index-map] {url}"
            if not isinstance(folder, str) or not folder.strip():
                raise LockError(
                    "expected a folder (relative to the project root)",
                    file="pyproject.toml",
                    field=shown,
                )
            path = (root / folder).resolve()
            if not path.is_dir():
                raise LockError(f"not a folder: {folder}", file="pyproject.toml", field=shown)
            out.folders[_checked(url, "pyproject.toml", shown)] = path
        if index is not None:
            out.index = _checked(index, None, "--pypi-index")
        return out

    def folder(self, index: str | None = None) -> Path | None:
        """The folder serving ``index`` (default: the configured one), if it is mapped."""
        return self.folders.get(canonical_index(index or self.index))

    def local_wheel(self, url: str) -> Path | None:
        """The file of a mapped index that a locked URL names (None: download it)."""
        for index, folder in self.folders.items():
            prefix = files_url(index)
            if url.startswith(prefix):
                name = url[len(prefix) :].split("#", 1)[0]
                if "/" not in name and name not in ("", ".", ".."):
                    return folder / name
        return None


def _checked(url: str, file: str | None, shown: str) -> str:
    try:
        return canonical_index(url)
    except LockError as exc:
        raise LockError(exc.message, file=file, field=shown) from None
