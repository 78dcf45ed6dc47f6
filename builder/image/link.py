"""Finish an installed environment in the target image: ``.pyc`` files and post-link scripts.

rattler installs the packages on the build host without running anything from them, so an
aarch64 environment installs on an amd64 host. What conda would then run (compiling
``.pyc`` files, the packages' ``bin/.NAME-post-link.sh`` scripts) must run on the target's
own interpreter and tools: ``scripts/link-env.sh`` does it in a container of the system
image with the staging folder bind-mounted at the environment prefix, under emulation for
another architecture, with no network. A failing post-link script fails the build.

Compiled files land in the staging folder beside their sources; ``owner_of`` gives each to
the package that owns its source, so it ends up in that package's layer, and
``register_compiled`` lists it in that package's ``conda-meta`` record, as conda does.
PyPI wheels installed for the system's Python (no conda ``python``) are compiled by that
Python, in the same step (``system_python``).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path, PurePosixPath

from builder import docker, fsutil
from builder.errors import BuildError
from builder.lock.model import LockedPackage

SCRIPT = "link-env.sh"
_MOUNT = "/tmp/scistacks-link"


def dependency_order(packages: dict[str, LockedPackage]) -> list[LockedPackage]:
    """Dependencies before their dependants (conda's link order); ties by name."""
    deps = {
        name: sorted({d.split()[0] for d in p.depends} & set(packages) - {name})
        for name, p in packages.items()
    }
    done: set[str] = set()
    out: list[LockedPackage] = []

    def visit(name: str, seen: tuple[str, ...]) -> None:
        if name in done or name in seen:  # a cycle is broken where it closes
            return
        for dep in deps[name]:
            visit(dep, (*seen, name))
        done.add(name)
        out.append(packages[name])

    for name in sorted(packages):
        visit(name, ())
    return out


def _build_number(build: str) -> str:
    tail = build.rsplit("_", 1)[-1]
    return tail if tail.isdigit() else "0"


def finish(
    staging: Path,
    packages: dict[str, LockedPackage],
    *,
    system_image: str,
    oci_platform: str,
    env_prefix: str,
    work: Path,
    system_python: tuple[str, str] | None = None,
) -> list[str]:
    """Compile and run post-link scripts in ``system_image``; return the post-link scripts'
    package names, in the order they ran. ``system_python``: (the image's interpreter, a
    prefix-relative folder of wheels installed for it) to compile too."""
    order = dependency_order(packages)
    scripts = [p.name for p in order if (staging / "bin" / f".{p.name}-post-link.sh").is_file()]
    has_python = (staging / "bin" / "python").exists()
    if not scripts and not has_python and not system_python:
        return []
    work.mkdir(parents=True, exist_ok=True)
    listing = work / "link-order.txt"
    listing.write_text("".join(f"{p.name} {p.version} {_build_number(p.build)}\n" for p in order))
    log = work / "link.log"
    script = resources.files("builder.image") / "scripts" / SCRIPT
    with resources.as_file(script) as script_path:
        args = [
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            oci_platform,
            # the caller's uid: what the container writes stays removable by the caller
            "--user",
            f"{os.getuid()}:{os.getgid()}",
            "--entrypoint",
            "/bin/sh",
            "-e",
            f"PREFIX={env_prefix}",
            "-e",
            "HOME=/tmp",
            "-e",
            f"SYSTEM_PYTHON={system_python[0] if system_python else ''}",
            "-e",
            f"SYSTEM_SITE={system_python[1] if system_python else ''}",
            "-e",
            "SOURCE_DATE_EPOCH=" + os.environ.get("SOURCE_DATE_EPOCH", "1704067200"),
            "-v",
            f"{staging.resolve()}:{env_prefix}",
            "-v",
            f"{Path(script_path).resolve()}:{_MOUNT}/{SCRIPT}:ro",
            "-v",
            f"{listing.resolve()}:{_MOUNT}/packages.txt:ro",
            system_image,
            f"{_MOUNT}/{SCRIPT}",
            f"{_MOUNT}/packages.txt",
        ]
        what = f"finishing the environment in the {oci_platform} image (log: {fsutil.shown(log)})"
        try:
            docker.run(args, what=f"{what} failed", error=BuildError, log=log)
        except BuildError as exc:
            raise _failure(log, what, system_python) or exc from None
    if "@@end" not in log.read_text(errors="replace").splitlines():
        raise BuildError(f"{what} stopped before the end")
    return scripts


def _failure(log: Path, what: str, system_python: tuple[str, str] | None) -> BuildError | None:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("@@fail "):
            _, name, *rest = line.split()
            if name == "python":
                return BuildError(f"{what}: the environment's python does not start")
            if name == "system-python":
                python = system_python[0] if system_python else "its python"
                return BuildError(f"{what}: {python} does not start (the wheels' Python)")
            return BuildError(
                f"post-link script of {name} failed with exit code {rest[0] if rest else '?'} "
                f"in the target image (log: {fsutil.shown(log)})",
                field=name,
            )
    return None


# ---------------------------------------------------------------- compiled files


def source_of(rel: str) -> str | None:
    """``pkg/__pycache__/mod.cpython-311.pyc`` -> ``pkg/mod.py`` (None: not a cache file)."""
    path = PurePosixPath(rel)
    if path.suffix != ".pyc" or path.parent.name != "__pycache__":
        return None
    return str(path.parent.parent / (path.name.split(".", 1)[0] + ".py"))


def compiled_files(staging: Path, owned: set[str]) -> dict[str, str]:
    """``{pyc: source}`` for every compiled file in ``staging`` that no package lists."""
    out: dict[str, str] = {}
    for dirpath, _, filenames in os.walk(staging):
        if os.path.basename(dirpath) != "__pycache__":
            continue
        rel_dir = os.path.relpath(dirpath, staging)
        for name in filenames:
            rel = f"{rel_dir}/{name}"
            source = source_of(rel)
            if source and rel not in owned:
                out[rel] = source
    return out


def register_compiled(staging: Path) -> int:
    """List each new ``.pyc`` in the record of the package owning its source, as conda's
    ``pyc_file`` paths, so removing the package removes them too. Returns how many."""
    records: dict[str, dict] = {}
    owner: dict[str, str] = {}
    for meta in sorted((staging / "conda-meta").glob("*.json")):
        record = json.loads(meta.read_text())
        records[meta.name] = record
        for rel in record.get("files", []):
            owner.setdefault(rel, meta.name)
    added: dict[str, list[str]] = {}
    for pyc, source in sorted(compiled_files(staging, set(owner)).items()):
        if source in owner:
            added.setdefault(owner[source], []).append(pyc)
    for meta_name, pycs in added.items():
        record = records[meta_name]
        record["files"] = sorted({*record.get("files", []), *pycs})
        paths = record.setdefault("paths_data", {"paths": [], "paths_version": 1})
        known = {p.get("_path") for p in paths.get("paths", [])}
        paths["paths"] = sorted(
            [
                *paths.get("paths", []),
                *({"_path": p, "path_type": "pyc_file"} for p in pycs if p not in known),
            ],
            key=lambda p: p["_path"],
        )
        (staging / "conda-meta" / meta_name).write_text(json.dumps(record, indent=2) + "\n")
    return sum(len(p) for p in added.values())
