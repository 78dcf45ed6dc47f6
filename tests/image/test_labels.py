"""OCI labels: where the image came from, without secrets and without wall-clock times."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.image import labels
from builder.lock.model import LockedDistribution, LockedPackage
from builder.spec.layering import Distribution


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def locked() -> LockedDistribution:
    pkg = LockedPackage(
        "demo-data",
        "1.0.0",
        "h0_0",
        "linux-64",
        "https://conda.anaconda.org/scistacks-demo/noarch/demo-data-1.0.0-h0_0.tar.bz2",
        "",
        "ab" * 32,
        "noarch",
    )
    return LockedDistribution("demo", ("linux-64",), ("scistacks-demo",), {"linux-64": [pkg]}, "x")


def dist() -> Distribution:
    return Distribution(
        name="demo",
        description="Offline demo",
        parent=None,
        chain=("demo",),
        spec_files=(),
        channels=(),
        platforms=("linux-64",),
        dependencies=(),
        constraints=(),
        pip=(),
        apt=(),
        virtual_packages={},
        notebooks=(),
        imports=(),
        post_build=(),
        start=(),
        base_image=None,
        solve_group=None,
        hub=None,
    )


def test_labels_in_a_git_checkout(tmp_path, locked, monkeypatch):
    monkeypatch.delenv(labels.SOURCE_ENV, raising=False)
    git(tmp_path, "init", "-q")
    git(
        tmp_path,
        "remote",
        "add",
        "origin",
        "https://someone:s3cret-token@example.org/hub/stacks.git",
    )
    (tmp_path / "f").write_text("x")
    git(tmp_path, "add", "f")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "x")
    out = labels.image_labels(tmp_path, dist(), locked, "linux-64", "native")
    assert out["org.opencontainers.image.source"] == "https://example.org/hub/stacks.git"
    assert "s3cret" not in "".join(out.values())
    assert out["org.opencontainers.image.revision"] == git(tmp_path, "rev-parse", "HEAD")
    assert out["org.opencontainers.image.version"] == f"lock-{locked.lock_hash()[:12]}"
    assert out["io.scistacks.lock-hash"] == locked.lock_hash()
    assert out["io.scistacks.platform-lock-hash"] == locked.lock_hash("linux-64")
    assert out["io.scistacks.distribution"] == "demo"
    assert out["io.scistacks.engine"] == "native"
    assert out["org.opencontainers.image.title"] == "demo"
    assert out["org.opencontainers.image.description"] == "Offline demo"
    assert not any("created" in key for key in out)


def test_labels_outside_git_and_source_override(tmp_path, locked, monkeypatch):
    monkeypatch.delenv(labels.SOURCE_ENV, raising=False)
    out = labels.image_labels(tmp_path, dist(), locked, "linux-64", "repo2docker")
    assert out["org.opencontainers.image.revision"] == "unknown"
    assert "org.opencontainers.image.source" not in out
    monkeypatch.setenv(labels.SOURCE_ENV, "https://example.org/mirror/stacks")
    out = labels.image_labels(tmp_path, dist(), locked, "linux-64", "repo2docker")
    assert out["org.opencontainers.image.source"] == "https://example.org/mirror/stacks"


@pytest.mark.parametrize(
    "origin",
    [
        "git@github.com:org/stacks.git",  # scp-style: not a URL
        "example.org:stacks",
        "/srv/git/stacks.git",  # a local clone
        "../stacks",
        "file:///srv/git/stacks.git",
        "ssh://git@example.org/org/stacks.git",
    ],
)
def test_an_origin_that_is_no_web_url_gives_no_source(tmp_path, locked, monkeypatch, origin):
    monkeypatch.delenv(labels.SOURCE_ENV, raising=False)
    git(tmp_path, "init", "-q")
    git(tmp_path, "remote", "add", "origin", origin)
    out = labels.image_labels(tmp_path, dist(), locked, "linux-64", "native")
    assert "org.opencontainers.image.source" not in out
    monkeypatch.setenv(labels.SOURCE_ENV, "https://example.org/org/stacks")
    out = labels.image_labels(tmp_path, dist(), locked, "linux-64", "native")
    assert out["org.opencontainers.image.source"] == "https://example.org/org/stacks"


def test_an_http_origin_is_the_source(tmp_path, locked, monkeypatch):
    monkeypatch.delenv(labels.SOURCE_ENV, raising=False)
    git(tmp_path, "init", "-q")
    git(tmp_path, "remote", "add", "origin", "http://git.example.org/org/stacks")
    assert labels.source_url(tmp_path) == "http://git.example.org/org/stacks"
