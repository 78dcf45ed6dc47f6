"""The native engine: the locked packages, exactly, in a slim image with repo2docker's conventions.

Per platform:

1. fetch every locked archive and wheel of the platform from its mirror and check its
   sha256/md5 against the lock (``builder.image.fetch``);
2. install them with py-rattler, without solving, into a staging folder; files carry
   ``/srv/conda/envs/notebook`` as their prefix (rattler's ``alternative_target_prefix``,
   in text and binary files), ``noarch: python`` packages land in the interpreter's
   ``site-packages`` with their entry points in ``bin/``; then the locked PyPI wheels
   with the PyPA installer (``builder.image.wheels``); nothing from the packages runs
   on the build host, so an aarch64 environment installs on an amd64 host;
3. the "system" image: ``docker buildx build`` of the base image, ``apt.txt`` and the
   ``jovyan`` user (uid/gid 1000); docker caches it between builds;
4. in a container of that image, with the staging folder mounted at the prefix:
   deterministic ``.pyc`` files, then the post-link scripts (``builder.image.link``);
5. scrub host paths out of ``conda-meta`` and split the files into layers
   (``builder.image.layers``: parent distributions' packages below the child's, then stable
   buckets, the PyPI wheels in a group of their own; each ``.pyc`` with its source's
   package), each written as a reproducible tar;
6. our layers on top of the system image through ``docker save``/``docker load``
   (``builder.image.assemble``, which also normalises the system image's own layers), with
   the runtime config (env on PATH, ``start`` through an entrypoint, a Jupyter default
   command, labels) and no wall-clock time;
7. ``postBuild`` as jovyan in one more ``docker buildx build`` step, when the context has one.
The image gets its final tag only once every step succeeded.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import rattler

from builder import docker, fsutil
from builder.errors import BuildError
from builder.image import assemble, layers, link, wheels
from builder.image.conventions import (
    CONDA_DIR,
    DEFAULT_BASE_IMAGE,
    DEFAULT_CMD,
    DEFAULT_PATH,
    ENTRYPOINT,
    ENV_PREFIX,
    HOME,
    NB_UID,
    NB_USER,
    START,
)
from builder.image.system import apt_packages, build_system, layers_above, post_build
from builder.lock import read_lock
from builder.lock.channels import ChannelMap
from builder.lock.model import LockedDistribution, LockedPackage
from builder.project import Project
from builder.spec.layering import Distribution

# Files rattler leaves in a prefix that are no package's and mean nothing in an image.
_NOT_IN_IMAGE = {"CACHEDIR.TAG"}
# conda-meta fields that hold paths of the build machine.
_HOST_FIELDS = ("extracted_package_dir", "package_tarball_full_path", "link")

Echo = Callable[[str], None]


@dataclass(frozen=True)
class NativeBuild:
    image_id: str
    env_layers: tuple[layers.LayerFile, ...]  # in image order
    env_bytes: int  # bytes of environment files (what the layering goal is measured on)


# ---------------------------------------------------------------- 1-2: fetch and install


def _lock_records(project: Project, name: str, platform: str) -> list[rattler.RepoDataRecord]:
    """The lockfile's records, as rattler reads them (everything ``install`` needs)."""
    lock = rattler.LockFile.from_path(project.lockfile(name))
    env = lock.default_environment()
    for plat in env.platforms():
        if plat.name == platform:
            return list(env.conda_repodata_records_for_platform(plat) or [])
    return []


def install(
    project: Project,
    locked: LockedDistribution,
    platform: str,
    staging: Path,
    channel_map: ChannelMap,
    pip_python: str | None = None,
) -> dict[str, LockedPackage]:
    """Verify and install the platform's locked packages and wheels into ``staging``;
    ``pip_python``: the spec's Python of the wheels when conda locks none."""
    from builder.image.fetch import fetch

    lockfile = project.relative(project.lockfile(locked.name))
    packages = locked.by_name(platform)
    cache = project.build_dir / "cache" / "pkgs"
    pypi = locked.pypi.get(platform, [])
    python = wheels.target_python(locked, platform, pip_python, lockfile) if pypi else ("", False)
    archives = fetch(list(packages.values()), cache, channel_map, lockfile=lockfile)
    wheel_files = _fetch_wheels(project, pypi, cache, lockfile) if pypi else {}
    records = _lock_records(project, locked.name, platform)
    if sorted(r.name.normalized for r in records) != sorted(packages):
        raise BuildError(
            f"the lock's {platform} records cannot be read back by rattler", file=lockfile
        )
    for record in records:
        package = packages[record.name.normalized]
        record.url = archives[package.name].resolve().as_uri()  # the verified copy, nothing else
        record.channel = package.channel
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        asyncio.run(
            rattler.install(
                records,
                target_prefix=staging,
                cache_dir=project.build_dir / "cache" / "rattler",
                platform=rattler.Subdir(platform),
                execute_link_scripts=False,
                show_progress=False,
                alternative_target_prefix=ENV_PREFIX,
            )
        )
    except Exception as exc:
        if "(os error 28)" in str(exc):  # rattler's ENOSPC: the build folder is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
        message = f"installing the locked {platform} packages failed: {exc}"
        raise BuildError(message, file=lockfile) from None
    _scrub_conda_meta(staging, packages)
    if pypi:
        wheels.install(
            staging,
            [(w, wheel_files[w.name]) for w in pypi],
            platform=platform,
            python=python[0],
            conda_python=python[1],
            lockfile=lockfile,
        )
    return packages


def _fetch_wheels(project: Project, pypi: list, cache: Path, lockfile: str) -> dict[str, Path]:
    from builder.image.fetch import fetch_wheels
    from builder.lock.pypi_index import PypiIndexMap

    index_map = PypiIndexMap.from_sources(project.root)

    def source(url: str) -> str:
        local = index_map.local_wheel(url)  # a mapped index: its folder, no server needed
        return local.as_uri() if local else url

    return fetch_wheels(pypi, cache, source, lockfile=lockfile)


def _scrub_conda_meta(staging: Path, packages: dict[str, LockedPackage]) -> None:
    """conda-meta as if installed from the canonical channel, with no build-machine paths."""
    for path in sorted((staging / "conda-meta").glob("*.json")):
        record = json.loads(path.read_text())
        package = packages.get(record.get("name", ""))
        if package is None:
            continue
        for key in _HOST_FIELDS:
            record.pop(key, None)
        record["url"] = package.url
        record["channel"] = package.channel
        path.write_text(json.dumps(record, indent=2) + "\n")
    text = "".join(p.read_text() for p in (staging / "conda-meta").glob("*.json"))
    if str(staging) in text:
        raise BuildError(f"conda-meta still names the build folder {staging} after clean-up")


# ---------------------------------------------------------------- 3: layers


def _owners(staging: Path) -> dict[str, str]:
    """prefix-relative file -> package name, from conda-meta (each package owns its record)."""
    owners: dict[str, str] = {}
    for meta in sorted((staging / "conda-meta").glob("*.json")):
        record = json.loads(meta.read_text())
        owners.setdefault(f"conda-meta/{meta.name}", record["name"])
        for rel in record.get("files", []):
            owners.setdefault(rel, record["name"])
    return owners


def _prefix_files(staging: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(staging):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, staging)
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if name in dirnames and not os.path.islink(full):
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel not in _NOT_IN_IMAGE:
                out.append(rel)
    return sorted(out)


def _entry(staging: Path, rel: str) -> layers.Entry:
    full = staging / rel
    st = full.lstat()
    path = f"{ENV_PREFIX.lstrip('/')}/{rel}"
    if stat.S_ISLNK(st.st_mode):
        return layers.Entry(path, "symlink", 0o777, NB_UID, NB_UID, target=os.readlink(full))
    # modes normalised to 0755/0644: the same on every build host, whatever its umask
    mode = 0o755 if st.st_mode & 0o111 else 0o644
    return layers.Entry(path, "file", mode, NB_UID, NB_UID, source=full)


def package_groups(
    project: Project, dist: Distribution, locked: LockedDistribution, platform: str
) -> dict[str, str]:
    """package -> the distribution of the chain that brought it in (root-most wins)."""
    owner: dict[str, str] = {}
    for ancestor in dist.chain[:-1]:
        if not project.lockfile(ancestor).is_file():
            continue
        theirs = read_lock(project, ancestor).packages.get(platform, [])
        for p in theirs:
            mine = locked.by_name(platform).get(p.name)
            if mine is not None and (mine.version, mine.build) == (p.version, p.build):
                owner.setdefault(p.name, ancestor)
    return {p.name: owner.get(p.name, dist.name) for p in locked.packages[platform]}


def write_env_layers(
    staging: Path,
    groups: dict[str, str],
    chain: tuple[str, ...],
    out_dir: Path,
    pypi: dict[str, list[str]] | None = None,
) -> tuple[list[tuple[layers.LayerPlan | None, layers.LayerFile]], int]:
    """Write the environment as layers; return ``[(plan, file)]`` in image order and the
    environment's bytes. ``pypi``: each installed wheel's prefix-relative files."""
    owners = _owners(staging)
    wheel_of = {rel: name for name, rels in (pypi or {}).items() for rel in rels}
    files = _prefix_files(staging)
    by_package: dict[str, list[str]] = {}
    by_wheel: dict[str, list[str]] = {}
    loose: list[str] = []
    sizes: dict[str, int] = {name: 0 for name in groups}
    wheel_sizes: dict[str, int] = {name: 0 for name in pypi or {}}
    total = 0
    for rel in files:
        size = (staging / rel).lstat().st_size
        total += size
        package = owners.get(rel)
        if package in groups:
            by_package.setdefault(package, []).append(rel)
            sizes[package] += size
        elif rel in wheel_of:
            by_wheel.setdefault(wheel_of[rel], []).append(rel)
            wheel_sizes[wheel_of[rel]] += size
        else:
            loose.append(rel)
    plan = layers.plan(
        [(g, {p: sizes[p] for p, owner in groups.items() if owner == g}) for g in chain],
        pypi=wheel_sizes,
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    written: list[tuple[layers.LayerPlan | None, layers.LayerFile]] = []
    below = CONDA_DIR.lstrip("/")
    for index, layer in enumerate(plan):
        owned = by_wheel if layer.group == layers.PYPI_GROUP else by_package
        rels = [rel for p in layer.packages for rel in owned.get(p, [])]
        entries = [_entry(staging, rel) for rel in rels]
        entries += layers.parent_dirs([e.path for e in entries], below, NB_UID, NB_UID)
        written.append((layer, layers.write_layer(out_dir / f"env-{index:02d}.tar", entries)))
    # what no package owns (conda-meta/history), and conda-meta/ itself for an empty env
    entries = [_entry(staging, rel) for rel in loose]
    entries.append(
        layers.Entry(f"{ENV_PREFIX.lstrip('/')}/conda-meta", "dir", 0o755, NB_UID, NB_UID)
    )
    entries += layers.parent_dirs([e.path for e in entries], below, NB_UID, NB_UID)
    written.append((None, layers.write_layer(out_dir / "env-meta.tar", entries)))
    return written, total


# ---------------------------------------------------------------- 5: runtime layer and config


def _script(name: str) -> bytes:
    """A script that runs inside images, shipped in ``builder/image/scripts/``."""
    return (resources.files("builder.image") / "scripts" / name).read_bytes()


def runtime_entries(context_dir: Path) -> list[layers.Entry]:
    entries = [
        layers.Entry(ENTRYPOINT.lstrip("/"), "file", 0o755, data=_script("entrypoint.sh")),
        layers.Entry(DEFAULT_CMD.lstrip("/"), "file", 0o755, data=_script("jupyter.sh")),
        layers.Entry("etc/profile.d/scistacks.sh", "file", 0o644, data=_script("profile.sh")),
    ]
    start = context_dir / "start"
    if start.is_file():
        entries.append(layers.Entry(os.path.dirname(START).lstrip("/"), "dir", 0o755))
        entries.append(layers.Entry(START.lstrip("/"), "file", 0o755, data=start.read_bytes()))
    return entries


def runtime_config(base: dict, labels: dict[str, str]) -> dict:
    config = dict(base.get("config") or {})
    env: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    path = env.get("PATH") or DEFAULT_PATH
    env.update(
        {
            "PATH": f"{ENV_PREFIX}/bin:{path}"
            if f"{ENV_PREFIX}/bin" not in path.split(":")
            else path,
            "CONDA_DIR": CONDA_DIR,
            "CONDA_PREFIX": ENV_PREFIX,
            "NB_PYTHON_PREFIX": ENV_PREFIX,
            "NB_USER": NB_USER,
            "NB_UID": str(NB_UID),
            "USER": NB_USER,
            "HOME": HOME,
            "SHELL": "/bin/bash",
            "LANG": env.get("LANG", "C.UTF-8"),
        }
    )
    config["Env"] = [f"{k}={v}" for k, v in env.items()]
    config["User"] = str(NB_UID)  # numeric, so Kubernetes' runAsNonRoot can check it
    config["WorkingDir"] = HOME
    config["Entrypoint"] = [ENTRYPOINT]
    config["Cmd"] = [DEFAULT_CMD]
    config["ExposedPorts"] = {"8888/tcp": {}}
    config["Labels"] = {**(config.get("Labels") or {}), **labels}
    return config


# ---------------------------------------------------------------- the whole engine


def build(project: Project, dist: Distribution, locked: LockedDistribution, platform: str, **kw):
    """Build the image; a full disk under the build folder is one line naming the folder."""
    with fsutil.out_of_space_as(BuildError, project.relative(project.build_dir)):
        return _build(project, dist, locked, platform, **kw)


def _build(
    project: Project,
    dist: Distribution,
    locked: LockedDistribution,
    platform: str,
    *,
    ref: str,
    oci_platform: str,
    labels: dict[str, str],
    base_image: str,
    context_dir: Path,
    channel_map: ChannelMap,
    echo: Echo = lambda _: None,
) -> NativeBuild:
    work = project.build_dir / "native" / dist.name / platform
    staging = work / "prefix"
    echo(
        f"  fetching, verifying and installing {len(locked.packages[platform])} locked packages ({platform})"
    )
    packages = install(project, locked, platform, staging, channel_map, dist.pip_python)
    pypi = locked.pypi.get(platform, [])
    lockfile = project.relative(project.lockfile(locked.name))
    python, conda_python = (
        wheels.target_python(locked, platform, dist.pip_python, lockfile) if pypi else ("", True)
    )
    system = build_system(
        base_image, apt_packages(context_dir), oci_platform, work / "system", echo
    )
    echo(f"  compiling .pyc files and running post-link scripts in the image ({oci_platform})")
    ran = link.finish(
        staging,
        packages,
        system_image=system,
        oci_platform=oci_platform,
        env_prefix=ENV_PREFIX,
        work=work,
        system_python=None
        if conda_python
        else (wheels.interpreter(python, False), wheels.site_packages(python)),
    )
    if ran:
        echo(f"  post-link scripts: {', '.join(ran)}")
    link.register_compiled(staging)
    wheel_files = {}
    if pypi:
        wheels.register_compiled(staging, python)
        wheel_files = wheels.owners(staging, python)
        echo(f"  PyPI: {len(pypi)} wheels in {wheels.site_packages(python)}")

    groups = package_groups(project, dist, locked, platform)
    env_layers, env_bytes = write_env_layers(
        staging, groups, dist.chain, work / "layers", wheel_files
    )
    echo(f"  environment: {env_bytes} bytes in {len(env_layers)} layers")
    runtime = layers.write_layer(work / "layers" / "runtime.tar", runtime_entries(context_dir))
    new = [
        assemble.NewLayer(
            file,
            f"scistacks env: {plan.name} ({', '.join(plan.packages)})"
            if plan
            else "scistacks env: conda-meta",
        )
        for plan, file in env_layers
    ]
    new.append(assemble.NewLayer(runtime, "scistacks runtime: entrypoint, start, default command"))
    epoch = layers.source_date_epoch()
    image = assemble.append_layers(
        system,
        new,
        lambda base: runtime_config(base, labels),
        epoch,
        normalise=layers_above(system, base_image),
    )
    if (context_dir / "postBuild").is_file():
        built = post_build(image, context_dir, oci_platform, ref, work, echo)
        image = assemble.append_layers(
            built, [], lambda base: base["config"], epoch, normalise=layers_above(built, image)
        )
    docker.tag(image, ref, error=BuildError)
    return NativeBuild(image, tuple(f for _, f in env_layers), env_bytes)


def default_base_image(dist: Distribution, arch: str, override: str | None) -> str:
    template = override or dist.base_image or DEFAULT_BASE_IMAGE
    return template.replace("{arch}", arch)
