"""Fixtures of the catalog tests: a project with the shipped specs and lockfiles, and a
release history in a namespace of the local registry made cheaply (tiny real OCI images,
no docker build, as tests/hub does), with the artifacts publish and release attach: an
SBOM of a real lock, a smoke summary, a profile snippet. One release is yanked with
``scistacks yank``'s code, one carries a damaged smoke summary.

Chromium (Debian's ``chromium`` and ``chromium-driver``) is checked like docker: a test
marked ``browser`` is skipped without it, and fails under ``CI=true``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from docker_support import IN_CI, REGISTRY
from hub.conftest import push_release

from builder.lock.model import LockedDistribution
from builder.publish import PACKAGES_TYPE, SBOM_TYPE, SMOKE_TYPE
from builder.publish.sbom import sbom_json
from builder.registry import OCI_INDEX, Registry

REPO = Path(__file__).resolve().parents[2]
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"

SMOKE_OK = "# Smoke tests: {name}\n\n**passed** on 2 platforms\n\n## linux/amd64: passed\n\n## linux/arm64: passed\n"


def copy_project(dest: Path) -> Path:
    """The shipped specs (with the files they name) and lockfiles, and an empty yanked.yml."""
    shutil.copytree(REPO / "distributions", dest / "distributions")
    shutil.copytree(REPO / "lockfiles", dest / "lockfiles")
    shutil.copy(REPO / "yanked.yml", dest / "yanked.yml")
    return dest


def older(locked: LockedDistribution, changes: dict[str, str | None]) -> LockedDistribution:
    """``locked`` with some packages at another version (None: not there)."""
    packages = {}
    for plat, pkgs in locked.packages.items():
        out = []
        for p in pkgs:
            if p.name not in changes:
                out.append(p)
            elif changes[p.name] is not None:
                v = changes[p.name]
                out.append(dataclasses.replace(p, version=v, sha256=f"{p.sha256[:-4]}beef"))
        packages[plat] = out
    return dataclasses.replace(locked, packages=packages)


@dataclass
class World:
    project: Path
    registry: str  # localhost:5000/test-…
    client: Registry
    digests: dict[tuple[str, str], str] = field(default_factory=dict)  # (name, tag) -> digest

    def repository(self, name: str) -> str:
        return f"{self.registry.split('/', 1)[1]}/{name}"

    def release(
        self,
        name: str,
        calver: str,
        locked: LockedDistribution,
        *,
        smoke: str | None = SMOKE_OK,
        latest: bool = False,
        profile: str | None = None,
    ) -> str:
        repo = self.repository(name)
        tags = [calver] + (["latest"] if latest else [])
        digest = push_release(self.client, repo, locked.lock_hash(), tags)
        raw, media, _ = self.client.manifest(repo, digest)
        attached = [(SBOM_TYPE, f"{name}.cdx.json", sbom_json(locked).encode(), SBOM_TYPE)]
        attached.append((PACKAGES_TYPE, "packages.md", b"# packages\n", "text/markdown"))
        if smoke is not None:
            text = smoke.format(name=name).encode()
            attached.append((SMOKE_TYPE, "smoke-summary.md", text, "text/markdown"))
        if profile is not None:
            from builder.profiles import PROFILE_TYPE

            attached.append(
                (PROFILE_TYPE, "profile-z2jh.yaml", profile.encode(), "application/yaml")
            )
        for kind, file_name, data, file_media in attached:
            self.client.attach(
                repo,
                digest,
                media or OCI_INDEX,
                len(raw),
                kind,
                {file_name: (data, file_media)},
                {},
            )
        self.digests[(name, calver)] = digest
        return digest


@pytest.fixture
def catalog_project(tmp_path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """pangeo: three releases (the middle one yanked, the oldest with a damaged smoke
    summary), demo: one release; the others are not released."""
    from builder import lock as locking
    from builder.hub import yank
    from builder.project import Project
    from builder.spec import Catalog

    catalog_project = copy_project(tmp_path_factory.mktemp("catalog") / "project")
    project = Project.at(catalog_project)
    w = World(catalog_project, f"{REGISTRY}/test-{uuid.uuid4().hex[:10]}", Registry(REGISTRY))
    pangeo = locking.read_lock(project, "pangeo")
    w.release(
        "pangeo",
        "2025.01.15",
        older(pangeo, {"xarray": "2025.1.0", "zarr": "3.0.0", "flox": None}),
        smoke="not a smoke summary {name}",
    )
    w.release("pangeo", "2025.02.03", older(pangeo, {"xarray": "2025.1.2", "dask": "2099.1.0"}))
    w.release("pangeo", "2025.03.01", pangeo, latest=True)
    w.release("demo", "2025.03.01", locking.read_lock(project, "demo"), latest=True)
    yank(
        project,
        Catalog.load(project),
        "pangeo:2025.02.03",
        "dask 2099 <breaks> distributed",
        w.registry,
        replaced_by="2025.03.01",
        today=dt.date(2025, 2, 5),
    )
    return w  # treat it as read-only: tests share it


# ---------------------------------------------------------------- the browser


def chromium_problem() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).is_file():
            return f"{path} missing (apt-get install {package}; scripts/setup-host.sh does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def pytest_collection_modifyitems(config, items):
    problem = chromium_problem()
    if problem is None:
        return
    for item in items:
        if item.get_closest_marker("browser") is None:
            continue
        if IN_CI:
            item.fixturenames.insert(0, "_browser_missing_in_ci")  # a failure, never a skip
        else:
            item.add_marker(pytest.mark.skip(reason=f"browser: {problem}"))


@pytest.fixture
def _browser_missing_in_ci():
    pytest.fail(f"CI=true but the browser is not ready: {chromium_problem()}")
