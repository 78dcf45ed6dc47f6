"""A test PyPI index: a folder of small wheels and sdists, served on 127.0.0.1 by the same
server scistacks uses for mapped indexes (``builder.lock.pypi_server``).

The wheels are real wheels (METADATA, WHEEL, RECORD and a module), written directly
with fixed timestamps so that the folder is the same on every run (``make_wheel`` also
serves tests/examples); the demo's own wheels (``distributions/demo/wheels``) are built
by a real backend instead.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import shutil
import tarfile
import zipfile
from pathlib import Path

from builder.lock import pypi_server

REPO = Path(__file__).resolve().parents[1]
DEMO_WHEELS = REPO / "distributions" / "demo" / "wheels"
STAMP = (2024, 1, 1, 0, 0, 0)  # every file of every test wheel
STAMP_EPOCH = 1704067200


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    requires=(),
    scripts=None,
    data=None,
    tag="py3-none-any",
    python: str | None = None,
    stamp: tuple = STAMP,
):
    """A minimal, valid wheel, written by hand (fast, no build backend), with fixed
    timestamps: the same arguments give the same bytes."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{name.replace('-', '_')}/__init__.py": f"VERSION = {version!r}\ndef main():\n    print(VERSION)\n",
        f"{dist}.dist-info/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {name}\nVersion: {version}\nLicense: MIT\n"
        + (f"Requires-Python: {python}\n" if python else "")
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        f"Root-Is-Purelib: {str(tag == 'py3-none-any').lower()}\nTag: {tag}\n",
    }
    if scripts:
        files[f"{dist}.dist-info/entry_points.txt"] = "[console_scripts]\n" + "".join(
            f"{k} = {v}\n" for k, v in scripts.items()
        )
    for path, text in (data or {}).items():
        files[f"{dist}.data/data/{path}"] = text
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(zipfile.ZipInfo(path, stamp), text)
    return wheel


def _metadata(name: str, version: str, requires: list[str]) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n"


def write_sdist(folder: Path, name: str, version: str, requires: list[str] = ()) -> Path:
    """An sdist with static metadata (PKG-INFO and a PEP 621 pyproject.toml)."""
    module = name.replace("-", "_")
    base = f"{module}-{version}"
    deps = ", ".join(f'"{r}"' for r in requires)
    files = {
        f"{base}/PKG-INFO": _metadata(name, version, list(requires)),
        f"{base}/pyproject.toml": (
            '[build-system]\nrequires = ["flit_core>=3.4"]\nbuild-backend = "flit_core.buildapi"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\ndescription = "test"\n'
            f"dependencies = [{deps}]\n"
        ),
        f"{base}/{module}.py": f'__version__ = "{version}"\n',
    }
    out = folder / f"{base}.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), STAMP_EPOCH, 0o644
            tf.addfile(info, io.BytesIO(data))

    out.write_bytes(gzip.compress(buffer.getvalue(), mtime=STAMP_EPOCH))
    return out


def make_index_folder(folder: Path) -> Path:
    """The demo wheels, plus what the tests need: two versions of a package (bumps), a
    package whose dependency clashes with conda's demo-pylib, an sdist-only package and
    a platform wheel."""
    folder.mkdir(parents=True, exist_ok=True)
    for wheel in DEMO_WHEELS.glob("*.whl"):
        shutil.copyfile(wheel, folder / wheel.name)
    make_wheel(folder, "tinyver", "1.0.0")
    make_wheel(folder, "tinyver", "1.1.0")
    make_wheel(folder, "needs-tinyver", "1.0.0", ["tinyver >=1.0"])
    make_wheel(folder, "wants-new-pylib", "1.0.0", ["demo-pylib >=9"])
    write_sdist(folder, "only-sdist", "1.0.0")
    make_wheel(folder, "fastthing", "1.0.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    make_wheel(folder, "fastthing", "1.0.0", tag="cp311-cp311-manylinux_2_17_aarch64")
    make_wheel(folder, "fastthing", "1.0.0", tag="py3-none-any")
    return folder


@contextlib.contextmanager
def serve(folder: Path):
    """The folder as an index; yields its URL (``http://127.0.0.1:PORT/index/simple``)."""
    with pypi_server.serve() as server:
        yield server.add("index", folder)


TEST_INDEX = "https://pypi.scistacks-test.invalid/simple"  # .invalid: never resolves
DEMO_CHANNEL = REPO / "distributions" / "demo" / "channel"


def pypi_project(root: Path, specs: dict[str, dict]) -> Path:
    """A project on the demo channel whose PyPI index is the test index folder (mapped,
    as demo's is): ``specs`` maps a name to its distribution.yml mapping."""
    import yaml

    make_index_folder(root / "index")
    (root / "distributions").mkdir(exist_ok=True)
    for name, spec in specs.items():
        path = root / "distributions" / name / "distribution.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"name": name, **spec}, sort_keys=False))
    (root / "pyproject.toml").write_text(
        f'[tool.scistacks]\npypi-index = "{TEST_INDEX}"\n\n'
        f'[tool.scistacks.channel-map]\nscistacks-demo = "{DEMO_CHANNEL}"\n\n'
        f'[tool.scistacks.pypi-index-map]\n"{TEST_INDEX}" = "index"\n'
    )
    return root


def demo_spec(**fields) -> dict:
    """A distribution of the demo channel whose pip packages target Debian's python3."""
    return {
        "channels": ["scistacks-demo"],
        "dependencies": ["demo-pylib"],
        "pip_python": "3.11",
        **fields,
    }
