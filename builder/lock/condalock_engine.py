"""The second engine: conda-lock's own CLI, for people who want the reference tool.

It solves each distribution's merged spec on its own (no solve groups, so the
parent-consistency guarantee is not enforced) and needs a conda, mamba or micromamba
executable. The result is rewritten to canonical channel URLs and our metadata, so the
files look the same as the rattler engine's.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from builder.errors import LockError
from builder.lock import condalock
from builder.lock.channels import ChannelMap
from builder.lock.platforms import ARCHSPEC, DEFAULTS
from builder.lock.read import inputs_hash
from builder.lock.stage import write_lock
from builder.project import Project
from builder.spec import Catalog

SOLVERS = ("micromamba", "mamba", "conda")


def find_solver() -> str | None:
    for exe in SOLVERS:
        path = shutil.which(exe)
        if path:
            return path
    return None


def lock_with_conda_lock(
    project: Project, catalog: Catalog, name: str, channel_map: ChannelMap, echo=print
) -> bool:
    solver = find_solver()
    if solver is None:
        raise LockError(
            "--engine conda-lock needs conda, mamba or micromamba on PATH; none found",
            field="--engine",
        )
    conda_lock = shutil.which("conda-lock")
    if conda_lock is None:
        raise LockError(
            "the conda-lock command is not installed (pip install conda-lock)", field="--engine"
        )
    dist = catalog.get(name)
    echo(f"  conda-lock: solving {name} alone (no solve group) with {Path(solver).name}")
    with tempfile.TemporaryDirectory(prefix="scistacks-conda-lock-") as tmp:
        tmpdir = Path(tmp)
        env = {
            "name": name,
            "channels": [channel_map.source_url(c) for c in dist.channels],
            "dependencies": list(dist.constraints),
        }
        if dist.pip:
            env["dependencies"].append({"pip": list(dist.pip)})
        (tmpdir / "environment.yml").write_text(yaml.safe_dump(env, sort_keys=False))
        virtual = {
            "subdirs": {
                p: {
                    "packages": {
                        **DEFAULTS[p.split("-")[0]],
                        **dist.virtual_packages,
                        "__archspec": f"1 {ARCHSPEC[p]}",
                    }
                }
                for p in dist.platforms
            }
        }
        (tmpdir / "virtual-packages.yml").write_text(yaml.safe_dump(virtual))
        out = tmpdir / "conda-lock.yml"
        argv = [
            conda_lock,
            "lock",
            "--conda",
            solver,
            "-f",
            str(tmpdir / "environment.yml"),
            "--virtual-package-spec",
            str(tmpdir / "virtual-packages.yml"),
            "--lockfile",
            str(out),
        ]
        for p in dist.platforms:
            argv += ["-p", p]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmpdir)
        if proc.returncode != 0:
            tail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-3:]
            raise LockError(f"conda-lock failed: {' / '.join(tail)}", file=dist.spec_files[-1])
        raw = condalock.read(out, "conda-lock output")
    packages = {
        plat: [dataclasses.replace(p, url=channel_map.to_canonical(p.url)) for p in pkgs]
        for plat, pkgs in raw.packages.items()
    }
    locked = dataclasses.replace(
        raw,
        name=name,
        channels=tuple(dist.channels),
        packages=packages,
        inputs_hash=inputs_hash(catalog, name),
        metadata={
            "distribution": name,
            "solve_group": f"{name} (conda-lock engine)",
            "parent": dist.parent or "",
        },
    )
    return write_lock(project, catalog, locked)
