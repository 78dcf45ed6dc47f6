"""PyPI indexes: the index map of pyproject.toml, canonical wheel URLs, and the PEP 503 /
691 server that serves a mapped folder (builder/lock/pypi_index.py, pypi_server.py)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from urllib.parse import urljoin

import pytest
from pypi_index import make_index_folder

from builder.errors import LockError
from builder.lock import pypi_server
from builder.lock.pypi_index import DEFAULT_INDEX, PypiIndexMap, files_url, wheel_url

CANONICAL = "https://pypi.example.invalid/simple"


def get(url: str, accept: str | None = None) -> tuple[str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read()


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = make_index_folder(tmp_path_factory.mktemp("index"))
    with pypi_server.serve({"index": folder}) as server:
        yield server.base + "/index/simple", folder


def test_project_page_in_json_with_hashes_metadata_and_upload_times(index):
    url, folder = index
    kind, body = get(f"{url}/TinyVer/", "application/vnd.pypi.simple.v1+json")
    assert kind == "application/vnd.pypi.simple.v1+json"
    page = json.loads(body)
    assert page["name"] == "tinyver" and page["meta"]["api-version"] == "1.1"
    files = {f["filename"]: f for f in page["files"]}
    assert sorted(files) == ["tinyver-1.0.0-py3-none-any.whl", "tinyver-1.1.0-py3-none-any.whl"]
    one = files["tinyver-1.1.0-py3-none-any.whl"]
    data = (folder / one["filename"]).read_bytes()
    assert one["hashes"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert one["upload-time"] == "2024-01-01T00:00:00.000000Z"  # the newest file inside
    file_url = urljoin(f"{url}/tinyver/", one["url"])  # relative to the page, as clients read it
    _, metadata = get(file_url + ".metadata")
    assert one["core-metadata"]["sha256"] == hashlib.sha256(metadata).hexdigest()
    assert b"Version: 1.1.0" in metadata
    _, wheel = get(file_url)
    assert wheel == data


def test_html_pages_and_missing_projects(index):
    url, _ = index
    kind, body = get(f"{url}/")
    assert kind == "text/html" and b'<a href="only-sdist/">only-sdist</a>' in body
    _, page = get(f"{url}/only-sdist/")
    assert b"only_sdist-1.0.0.tar.gz#sha256=" in page
    with pytest.raises(urllib.error.HTTPError) as info:
        get(f"{url}/no-such-project/")
    assert info.value.code == 404


def test_canonical_wheel_urls_and_their_folder(tmp_path):
    assert (
        files_url("https://pypi.example.invalid/simple/") == "https://pypi.example.invalid/files/"
    )
    url = wheel_url(CANONICAL, "tinyver-1.0.0-py3-none-any.whl")
    assert url == "https://pypi.example.invalid/files/tinyver-1.0.0-py3-none-any.whl"
    (tmp_path / "wheels").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.scistacks]\npypi-index = "{CANONICAL}/"\n'
        f'[tool.scistacks.pypi-index-map]\n"{CANONICAL}" = "wheels"\n'
    )
    mapped = PypiIndexMap.from_sources(tmp_path)
    assert mapped.index == CANONICAL and mapped.folder() == tmp_path / "wheels"
    assert mapped.local_wheel(url) == tmp_path / "wheels" / "tinyver-1.0.0-py3-none-any.whl"
    assert mapped.local_wheel("https://files.pythonhosted.org/x/tinyver-1.0.0.whl") is None
    assert mapped.local_wheel("https://pypi.example.invalid/files/../etc/passwd") is None
    option = PypiIndexMap.from_sources(tmp_path, "https://mirror.invalid/simple")
    assert option.index == "https://mirror.invalid/simple" and option.folder() is None
    assert PypiIndexMap.from_sources(tmp_path / "nowhere").index == DEFAULT_INDEX


@pytest.mark.parametrize(
    ("toml", "field", "words"),
    [
        (
            "[tool.scistacks]\npypi-index = 3\n",
            "[tool.scistacks] pypi-index",
            "expected an index URL",
        ),
        (
            '[tool.scistacks]\npypi-index = "pypi.org"\n',
            "[tool.scistacks] pypi-index",
            "not an index URL",
        ),
        (
            '[tool.scistacks]\npypi-index-map = "x"\n',
            "[tool.scistacks] pypi-index-map",
            "expected a table",
        ),
        (
            f'[tool.scistacks.pypi-index-map]\n"{CANONICAL}" = "missing"\n',
            f"[tool.scistacks.pypi-index-map] {CANONICAL}",
            "not a folder",
        ),
    ],
)
def test_bad_index_config_is_one_line(tmp_path, toml, field, words):
    (tmp_path / "pyproject.toml").write_text(toml)
    with pytest.raises(LockError) as info:
        PypiIndexMap.from_sources(tmp_path)
    assert info.value.file == "pyproject.toml" and info.value.field == field
    assert words in info.value.message


def test_bad_index_option(tmp_path):
    with pytest.raises(LockError) as info:
        PypiIndexMap.from_sources(tmp_path, "not a url")
    assert info.value.field == "--pypi-index"
