"""Channels: canonical names in specs and lockfiles, mirrors for solving.

A lockfile always carries canonical URLs (``https://conda.anaconda.org/conda-forge/...``)
so that it installs for anyone online. A channel map (``conda-forge=file:///snapshot``)
says where to read repodata from instead: a mirror, a snapshot or a bundled folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import rattler

from builder.errors import LockError

ENV_VAR = "SCISTACKS_CHANNEL_MAP"


def canonical_url(channel: str) -> str:
    """``conda-forge`` -> ``https://conda.anaconda.org/conda-forge/`` (always with a slash)."""
    try:
        url = rattler.Channel(channel).base_url
    except Exception as exc:
        raise LockError(f"invalid channel {channel!r}: {exc}") from None
    return url if url.endswith("/") else url + "/"


def _as_url(location: str, base: Path) -> str:
    if re.match(r"^[a-z][a-z0-9+.-]*://", location):
        url = location
    else:
        path = Path(location)
        url = (path if path.is_absolute() else base / path).resolve().as_uri()
    return url if url.endswith("/") else url + "/"


def read_pyproject(root: Path) -> dict:
    """The project's pyproject.toml (empty when it has none); bad TOML is one line."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    import tomllib  # only when there is a pyproject.toml

    try:
        return tomllib.loads(pyproject.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"invalid TOML: {exc}", file="pyproject.toml") from None


@dataclass
class ChannelMap:
    """canonical channel URL -> URL the repodata is read from."""

    mirrors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_sources(cls, root: Path, entries: tuple[str, ...] | list[str] = ()) -> ChannelMap:
        """Project config (``[tool.scistacks.channel-map]`` in pyproject.toml), then the
        ``SCISTACKS_CHANNEL_MAP`` variable, then ``--channel-map`` options; later wins."""
        mapping = cls()
        if (root / "pyproject.toml").is_file():
            table: object = read_pyproject(root)
            fields = {"tool": "tool", "scistacks": "tool.scistacks", "channel-map": "channel-map"}
            for key, shown_key in fields.items():
                table = table.get(key, {})
                if not isinstance(table, dict):
                    raise LockError(
                        f"expected a table, got a {type(table).__name__} (write "
                        '[tool.scistacks.channel-map] then CHANNEL = "FOLDER_OR_URL" lines)',
                        file="pyproject.toml",
                        field=f"[tool.scistacks] {shown_key}"
                        if key == "channel-map"
                        else shown_key,
                    )
            for name, location in table.items():
                if not isinstance(location, str) or not location.strip():
                    raise LockError(
                        "expected a folder or URL string",
                        file="pyproject.toml",
                        field=f"[tool.scistacks.channel-map] {name}",
                    )
                mapping.add(
                    name, str(location), root, source="pyproject.toml [tool.scistacks.channel-map]"
                )
        env = os.environ.get(ENV_VAR, "")
        for entry in re.split(r"[\s,;]+", env.strip()):
            if entry:
                mapping.add_entry(entry, Path.cwd(), source=ENV_VAR)
        for entry in entries:
            mapping.add_entry(entry, Path.cwd(), source="--channel-map")
        return mapping

    def add_entry(self, entry: str, base: Path, source: str) -> None:
        name, sep, location = entry.partition("=")
        if not sep or not name or not location:
            raise LockError(f"expected CHANNEL=URL_OR_PATH, got {entry!r}", field=source)
        self.add(name, location, base, source)

    def add(self, channel: str, location: str, base: Path, source: str) -> None:
        url = _as_url(location, base)
        if url.startswith("file://"):
            local = Path(rattler_path(url))
            if not local.is_dir():
                raise LockError(f"mirror for {channel!r} is not a folder: {local}", field=source)
        self.mirrors[canonical_url(channel)] = url

    def source_url(self, channel: str) -> str:
        canonical = canonical_url(channel)
        return self.mirrors.get(canonical, canonical)

    def to_canonical(self, url: str) -> str:
        """Rewrite a package URL read from a mirror to the canonical channel's URL."""
        for canonical, mirror in self.mirrors.items():
            if url.startswith(mirror):
                return canonical + url[len(mirror) :]
        return url

    def to_mirror(self, url: str) -> str:
        """Where to download a locked (canonical) package URL from."""
        for canonical, mirror in self.mirrors.items():
            if url.startswith(canonical):
                return mirror + url[len(canonical) :]
        return url


def rattler_path(file_url: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(file_url).path)


def channel_name(url: str) -> str:
    """The short name users know: ``https://conda.anaconda.org/conda-forge/`` -> ``conda-forge``."""
    prefix = "https://conda.anaconda.org/"
    if url.startswith(prefix):
        return url[len(prefix) :].strip("/")
    return url.rstrip("/")
