"""A PEP 503 / PEP 691 simple index on 127.0.0.1, serving folders of wheels and sdists.

uv reads a mapped index (``builder.lock.pypi_index``) and the conda-provided stand-ins
(``builder.lock.pypi_provided``) through it while it resolves. Each root ``NAME`` answers
``/NAME/simple/`` (projects), ``/NAME/simple/PROJECT/`` (files, HTML or JSON by the Accept
header, sha256 fragments, PEP 658 core metadata, PEP 700 upload times) and
``/NAME/files/FILE``. A file's upload time is the newest timestamp inside it, so that
``--exclude-newer`` treats a folder of reproducibly built wheels the same on every checkout.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import html
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from urllib.parse import unquote

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
SDIST_SUFFIXES = (".tar.gz", ".zip")


def project_of(file_name: str) -> str | None:
    """The normalised project name of a wheel or sdist file name (None: neither)."""
    try:
        if file_name.endswith(".whl"):
            return parse_wheel_filename(file_name)[0]
        if file_name.endswith(SDIST_SUFFIXES):
            return parse_sdist_filename(file_name)[0]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def core_metadata(data: bytes, file_name: str) -> bytes | None:
    """The METADATA of a wheel (PKG-INFO of an sdist), or None."""
    try:
        if file_name.endswith(".whl"):
            with zipfile.ZipFile(BytesIO(data)) as zf:
                for name in zf.namelist():
                    parts = name.split("/")
                    if (
                        len(parts) == 2
                        and parts[0].endswith(".dist-info")
                        and parts[1] == "METADATA"
                    ):
                        return zf.read(name)
        elif file_name.endswith(".tar.gz"):
            with tarfile.open(fileobj=BytesIO(data), mode="r:gz") as tf:
                for member in tf.getmembers():
                    if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                        handle = tf.extractfile(member)
                        return handle.read() if handle else None
    except (zipfile.BadZipFile, tarfile.TarError, OSError):
        return None
    return None


def _upload_time(data: bytes, file_name: str) -> dt.datetime:
    newest = dt.datetime(1980, 1, 1, tzinfo=dt.UTC)
    try:
        if file_name.endswith(".whl") or file_name.endswith(".zip"):
            with zipfile.ZipFile(BytesIO(data)) as zf:
                for info in zf.infolist():
                    newest = max(newest, dt.datetime(*info.date_time, tzinfo=dt.UTC))
        elif file_name.endswith(".tar.gz"):
            with tarfile.open(fileobj=BytesIO(data), mode="r:gz") as tf:
                for member in tf.getmembers():
                    newest = max(newest, dt.datetime.fromtimestamp(member.mtime, dt.UTC))
    except (zipfile.BadZipFile, tarfile.TarError, OSError, ValueError):
        pass
    return newest


@dataclass(frozen=True)
class IndexFile:
    name: str
    data: bytes
    sha256: str
    metadata: bytes | None
    upload_time: dt.datetime

    @classmethod
    def of(cls, name: str, data: bytes) -> IndexFile:
        return cls(
            name,
            data,
            hashlib.sha256(data).hexdigest(),
            core_metadata(data, name) if name.endswith(".whl") else None,
            _upload_time(data, name),
        )


class Root:
    """The files of one root: a folder (read when a project is first asked for) or files
    given in memory."""

    def __init__(self, source: Path | Mapping[str, bytes]):
        self.folder = source if isinstance(source, Path) else None
        self.given = {} if isinstance(source, Path) else dict(source)
        self._loaded: dict[str, IndexFile] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if self.folder is not None:
            return sorted(p.name for p in self.folder.iterdir() if project_of(p.name))
        return sorted(n for n in self.given if project_of(n))

    def projects(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in self.names():
            out.setdefault(project_of(name) or "", []).append(name)
        return out

    def file(self, name: str) -> IndexFile | None:
        with self._lock:
            if name not in self._loaded:
                if self.folder is not None:
                    path = self.folder / name
                    if "/" in name or not path.is_file() or not project_of(name):
                        return None
                    data = path.read_bytes()
                elif name in self.given:
                    data = self.given[name]
                else:
                    return None
                self._loaded[name] = IndexFile.of(name, data)
            return self._loaded[name]


def _json_file(f: IndexFile) -> dict:
    out: dict = {
        "filename": f.name,
        "url": f"../../files/{f.name}",
        "hashes": {"sha256": f.sha256},
        "size": len(f.data),
        "upload-time": f.upload_time.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
    }
    if f.metadata is not None:
        out["core-metadata"] = {"sha256": hashlib.sha256(f.metadata).hexdigest()}
    return out


def _html_file(f: IndexFile) -> str:
    attrs = ""
    if f.metadata is not None:
        digest = hashlib.sha256(f.metadata).hexdigest()
        attrs = f' data-core-metadata="sha256={digest}" data-dist-info-metadata="sha256={digest}"'
    name = html.escape(f.name)
    return f'<a href="../../files/{name}#sha256={f.sha256}"{attrs}>{name}</a><br/>'


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args):
        pass  # uv's requests are not worth a line each on the terminal

    def do_GET(self):
        parts = [unquote(p) for p in self.path.split("?", 1)[0].split("/") if p]
        root = self.server.roots.get(parts[0]) if parts else None
        if root is None or len(parts) < 2:
            return self._send(404, b"not found", "text/plain")
        wants_json = JSON_TYPE in (self.headers.get("Accept") or "")
        if parts[1] == "simple" and len(parts) == 2:
            names = sorted(root.projects())
            if wants_json:
                body = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
                return self._send(200, json.dumps(body).encode(), JSON_TYPE)
            links = "".join(f'<a href="{n}/">{n}</a><br/>' for n in names)
            return self._send(200, f"<html><body>{links}</body></html>".encode(), "text/html")
        if parts[1] == "simple" and len(parts) == 3:
            project = canonicalize_name(parts[2])
            files = [f for n in root.projects().get(project, []) if (f := root.file(n))]
            if not files:
                return self._send(404, b"no such project", "text/plain")
            if wants_json:
                body = {
                    "meta": {"api-version": "1.1"},
                    "name": project,
                    "files": [_json_file(f) for f in files],
                    "versions": [],
                }
                return self._send(200, json.dumps(body).encode(), JSON_TYPE)
            links = "".join(_html_file(f) for f in files)
            return self._send(200, f"<html><body>{links}</body></html>".encode(), "text/html")
        if parts[1] == "files" and len(parts) == 3:
            name = parts[2]
            if name.endswith(".metadata"):
                f = root.file(name.removesuffix(".metadata"))
                if f is not None and f.metadata is not None:
                    return self._send(200, f.metadata, "application/octet-stream")
                return self._send(404, b"no metadata", "text/plain")
            f = root.file(name)
            if f is not None:
                return self._send(200, f.data, "application/octet-stream")
        return self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # a new port each time: not worth caching
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # uv opens dozens of connections at once: with the default backlog of 5 the kernel
    # drops the rest, and each dropped connect waits a second for its retry
    request_queue_size = 256
    roots: dict[str, Root]


class IndexServer:
    """A running server: ``add`` a root, get its index URL."""

    def __init__(self, server: _Server):
        self._server = server
        host, port = server.server_address[:2]
        self.base = f"http://{host}:{port}"

    def add(self, name: str, source: Path | Mapping[str, bytes]) -> str:
        """Serve ``source`` as root ``name``; returns ``http://127.0.0.1:PORT/NAME/simple``."""
        self._server.roots[name] = Root(source)
        return f"{self.base}/{name}/simple"


@contextlib.contextmanager
def serve(roots: Mapping[str, Path | Mapping[str, bytes]] | None = None) -> Iterator[IndexServer]:
    """Serve each root on an ephemeral port of 127.0.0.1 until the block ends."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.roots = {}
    handle = IndexServer(server)
    for name, source in (roots or {}).items():
        handle.add(name, source)
    # a short poll: shutdown() waits for it, and every lock ends with one
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="pypi-index", daemon=True
    )
    thread.start()
    try:
        yield handle
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
