"""Fixtures of the hub tests: a project with the shipped distribution specs, and a release
history published to the local registry cheaply (tiny real OCI images, no docker build).

Every test that touches the registry gets a namespace of its own, so yanks (which attach
artifacts to digests) never leak from one test into another.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from docker_support import REGISTRY

from builder.registry import OCI_INDEX, OCI_MANIFEST, Registry

REPO = Path(__file__).resolve().parents[2]
CONFIGS = Path(__file__).resolve().parent / "configs"

# What the configs in configs/ name: replaced by the test namespace when they are used
# against the registry. AUDITED_DIGEST stands for the digest of pangeo 2025.01.15.
CONFIG_REGISTRY = "quay.io/scistacks"
AUDITED_DIGEST = "sha256:" + "ab" * 32
DISTRIBUTIONS = ("base", "pangeo", "r-edu", "gpu-ml")

# The release history every registry test starts from: (distribution, CalVer, lock hash),
# oldest first. The newest release of each also carries latest and its version tag.
HISTORY = [
    ("pangeo", "2025.01.15", "1" * 64),
    ("pangeo", "2025.02.03", "2" * 64),
    ("pangeo", "2025.02.03-2", "3" * 64),
    ("r-edu", "2024.12.01", "4" * 64),
    ("r-edu", "2025.01.20", "5" * 64),
    ("base", "2025.01.15", "6" * 64),
]
VERSION_TAGS = {"pangeo": "python-3.12", "r-edu": "r-4.4", "base": "python-3.12"}


@dataclass(frozen=True)
class Release:
    distribution: str
    calver: str
    lock_hash: str
    digest: str  # of the OCI index

    @property
    def content_tag(self) -> str:
        return f"lock-{self.lock_hash[:12]}"


def _layer(text: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = text.encode()
        info = tarfile.TarInfo("etc/scistacks-release")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def push_release(client: Registry, repository: str, lock_hash: str, tags: list[str]) -> str:
    """A two-platform image (index over amd64 and arm64 manifests, one tiny layer each)
    labelled with ``lock_hash``, under ``lock-<12>``, ``lock-<12>-<arch>`` and ``tags``."""
    content = f"lock-{lock_hash[:12]}"
    entries = []
    for arch in ("amd64", "arm64"):
        layer = _layer(f"{repository} {lock_hash} {arch}\n")
        layer_digest = client.push_blob(repository, layer)
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {
                    "Labels": {
                        "io.scistacks.lock-hash": lock_hash,
                        "io.scistacks.distribution": repository.rsplit("/", 1)[-1],
                    }
                },
                "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            },
            sort_keys=True,
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": client.push_blob(repository, config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest,
                        "size": len(layer),
                    }
                ],
            },
            sort_keys=True,
        ).encode()
        digest = client.put_manifest(repository, f"{content}-{arch}", manifest, OCI_MANIFEST)
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, sort_keys=True
    ).encode()
    digest = client.put_manifest(repository, content, index, OCI_INDEX)
    for tag in tags:
        client.put_manifest(repository, tag, index, OCI_INDEX)
    return digest


@dataclass
class HubWorld:
    """A project (the shipped specs), a registry namespace and the releases in it."""

    project: Path
    registry: str  # localhost:5000/test-…
    client: Registry
    releases: list[Release] = field(default_factory=list)

    def release(self, distribution: str, calver: str) -> Release:
        return next(
            r for r in self.releases if r.distribution == distribution and r.calver == calver
        )

    def repository(self, distribution: str) -> str:
        return f"{self.registry.split('/', 1)[1]}/{distribution}"

    def config(self, name: str, dest: Path | None = None) -> Path:
        """configs/NAME copied next to the project, pointing at this world's registry."""
        text = (CONFIGS / name).read_text(encoding="utf-8")
        text = text.replace(CONFIG_REGISTRY, self.registry)
        text = text.replace(AUDITED_DIGEST, self.release("pangeo", "2025.01.15").digest)
        path = dest or self.project.parent / "hub-configs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


def make_project(root: Path) -> Path:
    for name in DISTRIBUTIONS:
        spec = REPO / "distributions" / name / "distribution.yml"
        (root / "distributions" / name).mkdir(parents=True)
        shutil.copy(spec, root / "distributions" / name / "distribution.yml")
    shutil.copy(REPO / "yanked.yml", root / "yanked.yml")
    return root


@pytest.fixture
def hub_project(tmp_path) -> Path:
    """A project with the shipped base, pangeo, r-edu and gpu-ml specs (no registry)."""
    return make_project(tmp_path / "project")


@pytest.fixture
def hub_world(hub_project) -> HubWorld:
    """HISTORY published in a fresh namespace of the local registry (gpu-ml: nothing)."""
    client = Registry(REGISTRY)
    world = HubWorld(hub_project, f"{REGISTRY}/test-{uuid.uuid4().hex[:10]}", client)
    newest = {name: calver for name, calver, _ in HISTORY}
    for name, calver, lock_hash in HISTORY:
        tags = [calver]
        if newest[name] == calver:
            tags += ["latest", VERSION_TAGS[name]]
        digest = push_release(client, world.repository(name), lock_hash, tags)
        world.releases.append(Release(name, calver, lock_hash, digest))
    return world
