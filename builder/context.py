"""Stage 3: context. Reads a lock and its spec, writes ``images/NAME/PLATFORM/``.

Each folder is a plain repo2docker repository that anyone can build without scistacks
(``repo2docker``, Binder, or scistacks' own engines):

- ``environment.yml``: every package of the platform's lock as ``name=version=build``;
- ``requirements.txt``: the lock's PyPI wheels, each by URL and sha256 (the lock stage's
  ``pip-PLATFORM.txt`` lines), which the ``pip:`` section of ``environment.yml`` reads;
- ``apt.txt``, ``postBuild``, ``start``: only where the spec asks for them;
- ``README.md``: which lock it came from and how to build it.

How repo2docker treats ``environment.yml`` (its conda buildpack): it first creates its own
frozen base environment in ``/srv/conda/envs/notebook`` for the Python ``X.Y`` it reads from
the ``python=...`` line, then runs ``mamba env update`` with our file. So the ``python`` pin
is written plainly (it picks the matching base environment), every package lands at its
locked build, and what repo2docker's base adds beyond the lock stays (the README says so).
The ``pip:`` section then runs ``pip install -r requirements.txt``; a line with a hash puts
pip in hash-checking mode, so a wheel that is not the locked one, or a dependency the lock
lacks, fails the build instead of being resolved anew. A ``-r`` line makes repo2docker copy
the whole folder before ``env update`` (it cannot tell what the file needs).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

from builder import lock as locking
from builder.errors import BuildError, LockError, SpecError
from builder.fsutil import write_all_atomic
from builder.image.conventions import NB_UID, NB_USER
from builder.lock import LockedDistribution, read_lock
from builder.lock.channels import channel_name
from builder.lock.pip_requirements import requirements_txt
from builder.project import OCI_PLATFORMS, Project, conda_platform, oci_platform
from builder.spec import Catalog, Distribution

# Every file this stage may write; others in a context folder are left alone.
MANAGED = ("environment.yml", "requirements.txt", "apt.txt", "postBuild", "start", "README.md")
REQUIREMENTS = "requirements.txt"
EXECUTABLE = 0o755

# repo2docker's conda buildpack adds r-devtools, RStudio (amd64 only, downloaded at build
# time) and an IRkernel install as soon as a dependency *starts with* "r-". Writing R
# packages channel-qualified keeps the image at the locked packages on both platforms.
R_PACKAGE = re.compile(r"^r-")
SHELLS = ("bash", "sh")


@dataclass(frozen=True)
class ContextResult:
    name: str
    platform: str
    path: Path
    changed: bool


def write_context(project: Project, catalog: Catalog, name: str, platform: str) -> Path:
    """Write ``images/NAME/PLATFORM/`` from the lock; return the folder."""
    platform = conda_platform(platform)
    _refuse_stale(project, catalog, [name])
    files = render(project, catalog.get(name), read_lock(project, name), platform)
    return _write(project, name, platform, files).path


def write_contexts(
    project: Project,
    catalog: Catalog,
    names: list[str],
    platforms: list[str] | None = None,
) -> list[ContextResult]:
    """Write the contexts of ``names`` for ``platforms`` (default: every image platform
    of each lock). Every lock is checked and every file rendered before one is written."""
    wanted = [conda_platform(p) for p in platforms] if platforms else None
    _refuse_stale(project, catalog, names)
    rendered: list[tuple[str, str, dict[str, tuple[str, int]]]] = []
    image_platforms: dict[str, list[str]] = {}
    for name in names:
        locked = read_lock(project, name)
        image_platforms[name] = [p for p in locked.platforms if p in OCI_PLATFORMS]
        for platform in image_platforms[name]:
            if wanted is None or platform in wanted:
                rendered.append(
                    (name, platform, render(project, catalog.get(name), locked, platform))
                )
    results = [_write(project, name, platform, files) for name, platform, files in rendered]
    if wanted is None:
        for name in names:
            _remove_stale_platforms(project, name, image_platforms[name])
    return results


def _refuse_stale(project: Project, catalog: Catalog, names: list[str]) -> None:
    for name in names:
        catalog.get(name)  # unknown names: the spec stage's own error
    stale = locking.check(project, catalog, names)
    if stale:
        s = stale[0]
        raise LockError(f"cannot write the build context of {s.name!r}: {s.reason}")


def render(
    project: Project, dist: Distribution, locked: LockedDistribution, platform: str
) -> dict[str, tuple[str, int]]:
    """The files of one context: name -> (text, mode)."""
    if platform not in locked.platforms:
        raise LockError(
            f"{dist.name!r} is not locked for {platform} (its platforms: {', '.join(locked.platforms)})",
            file=project.relative(project.lockfile(dist.name)),
        )
    oci_platform(platform)  # only platforms with a container image
    files: dict[str, tuple[str, int]] = {
        "environment.yml": (environment_yml(project, locked, platform), 0o644),
    }
    if locked.pypi.get(platform):
        files[REQUIREMENTS] = (pip_requirements(project, locked, platform), 0o644)
    if dist.apt:
        files["apt.txt"] = ("".join(f"{pkg}\n" for pkg in dist.apt), 0o644)
    if dist.post_build:
        files["postBuild"] = (post_build_script(project, dist), EXECUTABLE)
    if dist.start:
        files["start"] = (start_script(project, dist), EXECUTABLE)
    files["README.md"] = (readme(project, dist, locked, platform, sorted(files)), 0o644)
    return files


def _write(
    project: Project, name: str, platform: str, files: dict[str, tuple[str, int]]
) -> ContextResult:
    folder = project.context_dir(name, platform)
    # every file as one (temp files, then renames): a full disk leaves no partial context
    changed = bool(
        write_all_atomic(
            [(folder / file_name, text, mode) for file_name, (text, mode) in files.items()],
            shown=project.relative(folder),
            error=BuildError,
        )
    )
    for file_name in MANAGED:
        stale = folder / file_name
        if file_name not in files and stale.exists():
            stale.unlink()
            changed = True
    return ContextResult(name, platform, folder, changed)


def _remove_stale_platforms(project: Project, name: str, platforms: list[str]) -> None:
    """A platform dropped from the spec leaves no context behind (only folders we wrote)."""
    if not platforms:
        return
    root = project.context_dir(name, platforms[0]).parent
    for folder in sorted(root.iterdir()):
        ours = folder.is_dir() and all(p.name in MANAGED for p in folder.iterdir())
        if ours and folder.name not in platforms and (folder / "environment.yml").is_file():
            shutil.rmtree(folder)


# ---------------------------------------------------------------- files


def pin(package) -> str:
    """``name=version=build``; R packages channel-qualified (see ``R_PACKAGE``)."""
    if R_PACKAGE.match(package.name):
        return f"{channel_name(package.channel)}::{package.spec}"
    return package.spec


def environment_yml(project: Project, locked: LockedDistribution, platform: str) -> str:
    packages = sorted(locked.packages[platform], key=lambda p: p.name)
    dependencies: list = [pin(p) for p in packages]
    if locked.pypi.get(platform):
        dependencies.append({"pip": [f"-r {REQUIREMENTS}"]})
    body = {
        "name": locked.name,
        "channels": [channel_name(c) for c in locked.channels],
        "dependencies": dependencies,
    }
    lockfile = project.relative(project.lockfile(locked.name))
    header = (
        f"# Generated by scistacks from {lockfile} ({platform}). DO NOT EDIT.\n"
        f"# Regenerate: scistacks context {locked.name} --platform {platform}\n"
        f"# lock hash ({platform}): {locked.lock_hash(platform)}\n"
        f"# {len(packages)} packages, each pinned to its locked build (name=version=build).\n"
    )
    if locked.pypi.get(platform):
        wheels = len(locked.pypi[platform])
        header += f"# {wheels} PyPI wheels, each by URL and sha256, in {REQUIREMENTS}.\n"
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=False, width=1000)


def pip_requirements(project: Project, locked: LockedDistribution, platform: str) -> str:
    lockfile = project.relative(project.lockfile(locked.name))
    header = [
        f"Generated by scistacks from {lockfile} ({platform}). DO NOT EDIT.",
        f"The locked PyPI wheels of {locked.name}; environment.yml's pip section reads this file.",
    ]
    return requirements_txt(locked.pypi[platform], header=header, file=REQUIREMENTS)


def _script_body(project: Project, dist: Distribution, path: str, field: str) -> list[str]:
    """A script's lines without its shebang; only shell scripts can be chained."""
    source = project.root / path
    spec_file = dist.spec_files[dist.chain.index(_owner(dist, path))]
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"script {path} does not exist", file=spec_file, field=field) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read script {path}: {exc}", file=spec_file, field=field) from None
    lines = text.splitlines()
    if lines and lines[0].startswith("#!"):
        interpreter = lines[0][2:].split()
        shell = (
            interpreter[-1]
            if interpreter and interpreter[0].endswith("/env")
            else (interpreter or [""])[0]
        )
        if Path(shell).name not in SHELLS:
            raise SpecError(
                f"{path} starts with {lines[0]!r}: scripts of a chain are joined into one bash script, "
                "so they must be bash or sh scripts",
                file=spec_file,
                field=field,
            )
        lines = lines[1:]
    return lines


def _owner(dist: Distribution, path: str) -> str:
    """The distribution of the chain whose folder holds ``path``."""
    folder = Path(path).parts[1] if len(Path(path).parts) > 1 else dist.name
    return folder if folder in dist.chain else dist.name


def _chain(dist: Distribution) -> str:
    return " -> ".join(dist.chain) + " (parent first)" if dist.parent else dist.name


def post_build_script(project: Project, dist: Distribution) -> str:
    out = [
        "#!/bin/bash",
        f"# Generated by scistacks: the postBuild scripts of {_chain(dist)}.",
        "set -euo pipefail",
    ]
    for path in dist.post_build:
        out += ["", f"# ---- {path}", *_script_body(project, dist, path, "post_build")]
    return "\n".join(out).rstrip("\n") + "\n"


def start_script(project: Project, dist: Distribution) -> str:
    out = [
        "#!/bin/bash",
        f"# Generated by scistacks: the start scripts of {_chain(dist)},",
        '# then the command (repo2docker\'s convention: a start script ends with exec "$@").',
    ]
    for path in dist.start:
        lines = _script_body(project, dist, path, "start")
        while lines and not lines[-1].strip():
            lines.pop()
        if lines and lines[-1].strip() == 'exec "$@"':
            lines.pop()  # each script's own hand-over; the chain ends with one
        out += ["", f"# ---- {path}", *lines]
    out += ["", 'exec "$@"']
    return "\n".join(out) + "\n"


def readme(
    project: Project,
    dist: Distribution,
    locked: LockedDistribution,
    platform: str,
    files: list[str],
) -> str:
    oci = oci_platform(platform)
    lockfile = project.relative(project.lockfile(dist.name))
    folder = project.relative(project.context_dir(dist.name, platform))
    count = len(locked.packages[platform])
    # repo2docker's own base environment always comes from conda-forge
    names = dict.fromkeys(["conda-forge", *(channel_name(c) for c in locked.channels)])
    channels = ", ".join(f"`{c}`" for c in names)
    hosts = sorted({urlparse(w.url).netloc for w in locked.pypi.get(platform, [])})
    if hosts:
        channels += " and the PyPI host" + ("s " if len(hosts) > 1 else " ")
        channels += ", ".join(f"`{h}`" for h in hosts)
    described = {
        "environment.yml": f"the {count} conda packages of the lock, each pinned to its exact build",
        REQUIREMENTS: f"the {len(locked.pypi.get(platform, []))} PyPI wheels of the lock, each by "
        "URL and sha256 (installed by the `pip:` section of `environment.yml`)",
        "apt.txt": "Debian/Ubuntu packages (the spec's `apt`)",
        "postBuild": "runs once at build time as the notebook user (the spec chain's `post_build` scripts)",
        "start": "runs before every command of the image (the spec chain's `start` scripts)",
    }
    out = [
        f"# {dist.name} for {oci}: a repo2docker build context",
        "",
        f"Generated by scistacks from `{lockfile}`. Do not edit: run `scistacks context {dist.name}`.",
        "",
        f"- distribution: `{dist.name}`" + (f" ({dist.description})" if dist.description else ""),
        f"- platform: `{platform}` (`{oci}`)",
        f"- lockfile: `{lockfile}`",
        f"- lock hash ({platform}): `{locked.lock_hash(platform)}`",
        f"- input hash: `{locked.inputs_hash}`",
        "",
        "Files:",
        "",
        *[f"- `{f}`: {described[f]}" for f in files if f in described],
        "",
        "## Build it",
        "",
        "With [repo2docker](https://repo2docker.readthedocs.io). At build time it needs the",
        f"registry of its base image, anaconda.org and the channels {channels} online:",
        "",
        "```",
        f"repo2docker --no-run --image-name {dist.name}:{platform} --Repo2Docker.platform={oci} "
        f"--user-id {NB_UID} --user-name {NB_USER} {folder}",
        "```",
        "",
        f"or `scistacks build {dist.name} --platform {oci}` (`--engine native` installs exactly",
        "the lock, without a solver).",
        "",
        "repo2docker first installs its own base environment for the same Python minor version",
        "into `/srv/conda/envs/notebook`, then updates it from `environment.yml`: every package",
        "of the lock lands at its locked build, and packages of repo2docker's own base that the",
        "lock lacks (such as nodejs) stay.",
    ]
    if any(R_PACKAGE.match(p.name) for p in locked.packages[platform]):
        out += [
            "",
            "R packages are written channel-qualified (`conda-forge::r-...`) so that repo2docker",
            "installs exactly them, without adding RStudio and r-devtools (amd64 only).",
        ]
    cuda = dist.virtual_packages.get("__cuda")
    if cuda:
        out += [
            "",
            f"The lock assumes a GPU driver (`__cuda={cuda}`). Build machines have none, so the",
            "solver inside the build must be told: build `FROM` a base image that sets",
            f"`ENV CONDA_OVERRIDE_CUDA={cuda}` (`--Repo2Docker.base_image=...`); `scistacks build`",
            "derives one from the base image.",
        ]
    return "\n".join(out) + "\n"
