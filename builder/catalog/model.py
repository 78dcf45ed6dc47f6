"""Stage 8 (catalog). Reads the specs, ``lockfiles/NAME/conda-lock.yml``, ``yanked.yml``
and what the registry publishes (releases, sizes, attached artifacts, yank advisories,
through ``builder.hub.Releases``); writes nothing: returns a ``Site`` for the renderer.

A registry that does not answer leaves a site from the lockfiles alone, with
``registry_error`` saying why; a damaged artifact adds one line to ``warnings``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from builder import diff as lockdiff
from builder.catalog import artifacts
from builder.errors import ScistacksError
from builder.hub import Releases, Yank
from builder.hub import yanked as yanks
from builder.lock.model import LockedDistribution
from builder.project import OCI_PLATFORMS, Project
from builder.publish import SBOM_TYPE, SMOKE_TYPE
from builder.publish.tags import content_tag
from builder.spec import Catalog

PYPI = "PyPI"
CONDA = "conda"


@dataclass
class PackageRow:
    name: str
    version: str
    build: str
    layer: str  # the distribution of the hierarchy that brought it in
    source: str  # conda | PyPI
    direct: bool = False  # asked for by a spec of the chain


@dataclass
class Release:
    date_tag: str
    digest: str
    content_tag: str | None = None
    sizes: dict[str, int] = field(default_factory=dict)  # linux/amd64 -> bytes
    yanks: list[Yank] = field(default_factory=list)
    smoke: artifacts.Smoke | None = None
    lock: LockedDistribution | None = None  # from the SBOM
    profile: str | None = None
    diff: lockdiff.DistributionDiff | None = None  # from the release before it
    previous: str | None = None  # that release's date tag

    @property
    def yanked(self) -> bool:
        return bool(self.yanks)

    @property
    def counts(self) -> dict[str, int]:
        """linux/amd64 -> number of packages (from the SBOM)."""
        if self.lock is None:
            return {}
        return {OCI_PLATFORMS.get(p, p): len(v) for p, v in sorted(self.lock.packages.items())}


@dataclass
class Distribution:
    name: str
    description: str
    parent: str | None
    chain: tuple[str, ...]
    platforms: tuple[str, ...]  # conda subdirs
    image: str | None  # REGISTRY/NS/NAME
    packages: dict[str, list[PackageRow]] = field(default_factory=dict)  # subdir -> rows
    lock_tag: str | None = None  # content tag of the committed lock
    lock_error: str | None = None
    releases: list[Release] = field(default_factory=list)  # newest first
    profile: str | None = None
    profile_from: str = ""  # "attached to TAG" | "made from the lockfile"
    children: list[str] = field(default_factory=list)

    @property
    def newest(self) -> Release | None:
        """The newest release that is not yanked (what hubs should pin)."""
        return next((r for r in self.releases if not r.yanked), None)

    @property
    def oci_platforms(self) -> list[str]:
        return [OCI_PLATFORMS[p] for p in self.platforms if p in OCI_PLATFORMS]

    @property
    def pin(self) -> str | None:
        """The immutable tag to show in commands: newest release, else the lock's tag."""
        newest = self.newest
        if newest is not None:
            return newest.date_tag
        return self.lock_tag

    @property
    def unreleased(self) -> bool:
        """The committed lock is not the newest release's (a release is due)."""
        newest = self.releases[0] if self.releases else None
        return newest is not None and newest.content_tag not in (None, self.lock_tag)


@dataclass
class Site:
    registry: str | None
    registry_error: str | None
    distributions: dict[str, Distribution]  # parents before children
    warnings: list[str] = field(default_factory=list)

    def roots(self) -> list[Distribution]:
        return [d for d in self.distributions.values() if d.parent not in self.distributions]

    def children_of(self, dist: Distribution) -> list[Distribution]:
        return [self.distributions[c] for c in dist.children if c in self.distributions]


# ---------------------------------------------------------------- the lockfiles


def _pip_rows(project: Project, name: str) -> dict[str, list[tuple[str, str]]]:
    """platform -> (name, version) of the PyPI packages of a lock (conda-lock's
    ``manager: pip`` entries, which the pipeline's lock model leaves out)."""
    path = project.lockfile(name)
    text = path.read_text(encoding="utf-8")
    if "manager: pip" not in text:
        return {}
    import yaml

    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    out: dict[str, list[tuple[str, str]]] = {}
    for entry in data.get("package") or []:
        if isinstance(entry, dict) and entry.get("manager") == "pip":
            out.setdefault(entry.get("platform", ""), []).append(
                (str(entry.get("name")), str(entry.get("version")))
            )
    return out


def package_rows(
    dist, locks: dict[str, LockedDistribution], pip: dict[str, list[tuple[str, str]]]
) -> dict[str, list[PackageRow]]:
    """Per platform, every locked package with the layer that brought it in: the
    distribution whose spec asks for it, else the first of the chain whose lock has it."""
    locked = locks[dist.name]
    declared = {}
    for package, origin in dist.origins.items():
        owner = next((n for n in dist.chain if f"/{n}/" in f"/{origin}"), dist.name)
        declared[package] = owner
    out: dict[str, list[PackageRow]] = {}
    for plat in locked.platforms:
        rows = []
        for p in locked.packages.get(plat, []):
            layer = declared.get(p.name) or next(
                (
                    n
                    for n in dist.chain
                    if n in locks and plat in locks[n].packages and p.name in _names(locks[n], plat)
                ),
                dist.name,
            )
            rows.append(PackageRow(p.name, p.version, p.build, layer, CONDA, p.name in declared))
        direct_pip = {_pip_name(s) for s in dist.pip}
        for name, version in pip.get(plat, []):
            rows.append(PackageRow(name, version, "", dist.name, PYPI, name in direct_pip))
        rows.sort(key=lambda r: (r.name.lower(), r.source))
        out[plat] = rows
    return out


_NAMES: dict[tuple[int, str], set[str]] = {}


def _names(locked: LockedDistribution, plat: str) -> set[str]:
    key = (id(locked), plat)
    if key not in _NAMES:
        _NAMES[key] = {p.name for p in locked.packages.get(plat, [])}
    return _NAMES[key]


def _pip_name(spec: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(spec).name
    except InvalidRequirement:
        return spec.split()[0]


# ---------------------------------------------------------------- the registry


def _release(repo: Releases, tag: str, name: str, warn) -> Release | None:
    found = repo.manifest(tag)
    if found is None:
        return None
    raw, media, digest = found
    release = Release(tag, digest, repo.content_tag(digest), yanks=repo.yanks(digest))
    if artifacts.is_index(media, raw):
        release.sizes = artifacts.platform_sizes(repo.client, repo.repository, raw)
    attached = artifacts.fetch(repo.client, repo.repository, digest)
    readers = {
        SBOM_TYPE: lambda f: setattr(release, "lock", artifacts.sbom_lock(f, name)),
        SMOKE_TYPE: lambda f: setattr(release, "smoke", artifacts.smoke_summary(f)),
        artifacts.PROFILE_TYPE: lambda f: setattr(release, "profile", artifacts.profile_snippet(f)),
    }
    for kind, files in attached.items():
        try:
            readers[kind](files)
        except artifacts.Damaged as exc:
            warn(f"{name}:{tag}: damaged {artifacts.WANTED[kind]} attached ({exc}), left out")
    return release


def _history(project: Project, catalog: Catalog, name: str, repo: Releases, warn) -> list:
    out = []
    for tag in repo.releases():
        release = _release(repo, tag, name, warn)
        if release is not None:
            out.append(release)
    direct = lockdiff.direct_names(catalog, name)
    for newer, older in itertools.pairwise(out):
        if newer.lock is not None and older.lock is not None:
            newer.diff = lockdiff.compare(older.lock, newer.lock, direct, name)
            newer.previous = older.date_tag
    return out


# ---------------------------------------------------------------- everything


def collect(
    project: Project,
    catalog: Catalog,
    registry: str | None,
    echo=lambda _: None,
) -> Site:
    """The catalog's data: every distribution, its lock, and (when ``registry`` answers)
    its releases."""
    from builder import lock as locking

    warnings: list[str] = []

    def warn(line: str) -> None:
        warnings.append(line)
        echo(f"warning: {line}")

    yanked = yanks.load(project)
    registry_error = None
    if registry:
        from builder.publish import target

        try:
            client, _ = target(registry, "x")
            client.ping()
        except ScistacksError as exc:
            registry_error = f"registry {registry} does not answer ({exc.message})"
    locks: dict[str, LockedDistribution] = {}
    site = Site(registry if registry else None, registry_error, {}, warnings)
    for name in catalog.names():
        spec = catalog.get(name)
        dist = Distribution(
            name,
            spec.description,
            spec.parent,
            spec.chain,
            spec.platforms,
            f"{registry.rstrip('/')}/{name}" if registry else None,
            children=catalog.children(name),
        )
        try:
            locks[name] = locking.read_lock(project, name)
            dist.lock_tag = content_tag(locks[name])
            dist.platforms = locks[name].platforms
        except ScistacksError as exc:
            dist.lock_error = exc.message
        site.distributions[name] = dist
    for name, dist in site.distributions.items():
        if name in locks:
            dist.packages = package_rows(catalog.get(name), locks, _pip_rows(project, name))
        if registry and registry_error is None:
            try:
                repo = Releases(registry, name, yanked)
                dist.releases = _history(project, catalog, name, repo, warn)
            except ScistacksError as exc:
                warn(f"{name}: cannot read its releases ({exc.message})")
        _profile(project, catalog, dist, registry)
    return site


def _profile(project: Project, catalog: Catalog, dist: Distribution, registry) -> None:
    """The newest release's attached snippet, else one made from the lock (the same code
    release attaches with), pinned by the lock's content tag."""
    newest = dist.newest
    if newest is not None and newest.profile:
        dist.profile, dist.profile_from = newest.profile, f"attached to {newest.date_tag}"
        return
    spec = catalog.get(dist.name)
    if spec.hub is None or dist.lock_tag is None or not dist.packages:
        return
    from builder.profiles import RSTUDIO_PACKAGES, HubImage, profile_list, render

    image = f"{(registry or 'REGISTRY/NAMESPACE').rstrip('/')}/{dist.name}:{dist.pin}"
    rstudio = any(r.name in RSTUDIO_PACKAGES for rows in dist.packages.values() for r in rows)
    hub_image = HubImage(dist.name, image, spec.hub, rstudio)
    dist.profile = render(profile_list([hub_image]), "z2jh")
    dist.profile_from = "made from the lockfile"
