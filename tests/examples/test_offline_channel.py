"""examples/offline-pangeo/build-channel.py on tiny wheels made here (no CPython, no PyPI).

The full channel (CPython and the PyPI set) is exercised by the example's nox session.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pypi_index import make_wheel

pytest.importorskip("rattler_build")
pytest.importorskip("whl2conda")
rattler = pytest.importorskip("rattler")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "offline-pangeo" / "build-channel.py"
SRC = SCRIPT.parent / "channel-src"


def lock_line(wheel: Path, sha: str | None = None) -> str:
    name, version = wheel.name.split("-")[:2]
    sha = sha or hashlib.sha256(wheel.read_bytes()).hexdigest()
    return f"{name}=={version} {wheel.name} sha256:{sha}\n"


@pytest.fixture
def tiny(tmp_path):
    """Two tiny wheels served from a folder, and a wheels.lock pinning them."""
    links = tmp_path / "links"
    links.mkdir()
    lib = make_wheel(links, "tiny_lib", "1.0")
    app = make_wheel(
        links,
        "tiny-app",
        "2.0",
        # spelt with "_" and behind a marker that holds on CPython 3.11
        requires=[
            "tiny_lib>=1.0",
            'tiny_lib>=1.0; python_version < "3.12"',
            "nope; os_name == 'nt'",
        ],
        scripts={"tiny-app": "tiny_app:main"},
        data={"share/jupyter/kernels/tiny/kernel.json": '{"argv": ["python"]}'},
    )
    # a "compiled" wheel: whl2conda makes a linux-64 package and writes no scripts for it
    ext = make_wheel(
        links,
        "tiny_ext",
        "0.1",
        scripts={"tiny-ext": "tiny_ext:main"},
        tag="cp311-cp311-manylinux_2_17_x86_64",
    )
    lock = tmp_path / "wheels.lock"
    lock.write_text("[linux-64]\n" + lock_line(lib) + lock_line(app) + lock_line(ext))
    link = tmp_path / "channel-link"
    old = tmp_path / "old-channel"
    old.mkdir()
    link.symlink_to(old)  # a previous channel, which bad input must leave alone
    return {"links": links, "lib": lib, "app": app, "lock": lock, "link": link, "old": old}


def build(tmp_path, tiny, *extra, cache=None):
    cmd = [sys.executable, str(SCRIPT), "--no-python", "--cache", str(cache or tmp_path / "cache")]
    cmd += ["--find-links", str(tiny["links"]), "--wheels", str(tiny["lock"])]
    cmd += ["--link", str(tiny["link"]), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def assert_bad(r, tmp_path, tiny, *names):
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for name in names:
        assert name in lines[0], lines[0]
    assert os.readlink(tiny["link"]) == str(tiny["old"])
    assert not list((tmp_path / "cache").glob("offline-channel/*/channel"))


def test_two_releases_of_one_wheel_download_on_a_cold_cache(tmp_path, tiny):
    # previous.in keeps older releases beside the current ones; one pip call cannot ask
    # for both (pip's resolver refuses tiny_lib==1.0 tiny_lib==1.1 even with --no-deps)
    newer = make_wheel(tiny["links"], "tiny_lib", "1.1")
    tiny["lock"].write_text("[linux-64]\n" + lock_line(tiny["lib"]) + lock_line(newer))
    r = build(tmp_path, tiny)
    assert r.returncode == 0, r.stderr
    assert "downloaded 2 wheels" in r.stdout
    channel = Path(r.stdout.strip().splitlines()[-1])
    noarch = json.loads((channel / "noarch" / "repodata.json").read_text())
    versions = sorted(p["version"] for p in noarch["packages.conda"].values())
    assert versions == ["1.0", "1.1"]


def test_wheel_with_wrong_sha256_is_refused(tmp_path, tiny):
    tiny["lock"].write_text("[linux-64]\n" + lock_line(tiny["lib"], sha="0" * 64))
    r = build(tmp_path, tiny)
    assert_bad(r, tmp_path, tiny, "wheels.lock", tiny["lib"].name, "sha256")


def test_wheel_missing_for_the_platform_is_refused(tmp_path, tiny):
    tiny["lock"].write_text("[linux-64]\ntiny_gone==3.0 tiny_gone-3.0-py3-none-any.whl sha256:00\n")
    r = build(tmp_path, tiny)
    assert_bad(r, tmp_path, tiny, "wheels.lock", "tiny_gone", "linux-64")


def test_platform_missing_from_the_lock_is_refused(tmp_path, tiny):
    r = build(tmp_path, tiny, "--platform", "linux-aarch64")
    assert_bad(r, tmp_path, tiny, "wheels.lock", "linux-aarch64")


def test_failing_conversion_is_refused(tmp_path, tiny):
    # a wheel whose metadata version whl2conda does not support, already in the download cache
    bad = tmp_path / "links" / "tiny_bad-1.0-py3-none-any.whl"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("tiny_bad-1.0.dist-info/METADATA", "Metadata-Version: 9.9\nName: tiny_bad\n")
        z.writestr("tiny_bad-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        z.writestr("tiny_bad-1.0.dist-info/RECORD", "")
    store = tmp_path / "cache" / "offline-channel" / "downloads" / "wheels"
    store.mkdir(parents=True)
    shutil.copy(bad, store / bad.name)
    tiny["lock"].write_text("[linux-64]\n" + lock_line(bad))
    r = build(tmp_path, tiny)
    assert_bad(r, tmp_path, tiny, "wheels.lock", bad.name, "whl2conda")


def test_failing_recipe_build_names_its_log(tmp_path, tiny):
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__"))
    recipe = src / "python_abi" / "recipe.yaml"
    recipe.write_text(
        recipe.read_text().replace("  string: 5_cp311\n", "  string: 5_cp311\n  script: exit 3\n")
    )
    r = build(tmp_path, tiny, "--src", str(src))
    assert_bad(r, tmp_path, tiny, "python_abi/recipe.yaml", "log: ")
    log = Path(r.stderr.strip().split("log: ")[1])
    assert log.is_file()


def fake_python(folder: Path) -> str:
    """A stand-in `python` package (CPython itself is built by the nox session only)."""
    from rattler_build import assemble_package

    files = folder / "files"
    (files / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (files / "lib" / "python3.11" / "site-packages" / "README.txt").write_text("here\n")
    for subdir in ("linux-64", "noarch"):
        (folder / "channel" / subdir).mkdir(parents=True)
    assemble_package(
        name="python",
        version="3.11.2",
        target_platform="linux-64",
        build_string="h0_cpython",
        output_dir=folder / "channel" / "linux-64",
        files_dir=files,
    )
    asyncio.run(rattler.index.index_fs(folder / "channel"))
    return (folder / "channel").as_uri()


def test_small_channel_builds_solves_installs_and_is_cached(tmp_path, tiny):
    r = build(tmp_path, tiny)
    assert r.returncode == 0, r.stderr
    channel = Path(r.stdout.strip().splitlines()[-1])
    assert channel.is_dir() and channel.parent.parent.name == "offline-channel"
    assert os.readlink(tiny["link"]) == str(channel)
    noarch = json.loads((channel / "noarch" / "repodata.json").read_text())
    app = next(p for p in noarch["packages.conda"].values() if p["name"] == "tiny-app")
    # one canonical name for the dependency, whatever its spelling and marker
    assert [d for d in app["depends"] if d.startswith("tiny-lib")] == ["tiny-lib >=1.0"]
    assert app["timestamp"] == 1704067200000

    py = fake_python(tmp_path / "py")
    vpkgs = [
        rattler.GenericVirtualPackage(
            rattler.PackageName(n), rattler.Version(v), rattler.BuildString("0")
        )
        for n, v in (("__glibc", "2.36"), ("__linux", "6.1"), ("__unix", "0"))
    ]
    records = asyncio.run(
        rattler.solve(
            [channel.as_uri(), py],
            ["python 3.11.*", "tiny-app", "tiny-ext"],
            platforms=["linux-64", "noarch"],
            virtual_packages=vpkgs,
        )
    )
    assert sorted(r.name.normalized for r in records) == [
        "python",
        "python_abi",
        "tiny-app",
        "tiny-ext",
        "tiny-lib",
    ]
    prefix = tmp_path / "env"
    asyncio.run(
        rattler.install(
            records,
            target_prefix=prefix,
            alternative_target_prefix="/srv/conda/envs/notebook",
            execute_link_scripts=False,
        )
    )
    script = (prefix / "bin" / "tiny-app").read_text()
    assert script.startswith("#!/srv/conda/envs/notebook/bin/python")
    assert (prefix / "share/jupyter/kernels/tiny/kernel.json").is_file()
    ext_script = (prefix / "bin" / "tiny-ext").read_text()
    assert ext_script.startswith("#!/srv/conda/envs/notebook/bin/python\n")
    assert "from tiny_ext import main" in ext_script
    assert (prefix / "lib/python3.11/site-packages/tiny_app/__init__.py").is_file()

    again = build(tmp_path, tiny)
    assert again.returncode == 0 and "is cached" in again.stdout
    assert again.stdout.strip().splitlines()[-1] == str(channel)

    # same inputs, another cache: the same package bytes
    other = build(tmp_path, tiny, cache=tmp_path / "cache2")
    other_channel = Path(other.stdout.strip().splitlines()[-1])
    for pkg in sorted(channel.glob("*/*.conda")):
        twin = other_channel / pkg.parent.name / pkg.name
        assert twin.read_bytes() == pkg.read_bytes(), pkg.name


def test_the_cache_key_is_the_inputs_not_the_docs(tmp_path, tiny):
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__"))
    first = build(tmp_path, tiny, "--src", str(src))
    assert first.returncode == 0, first.stderr
    (src / "README.md").write_text((src / "README.md").read_text() + "\nOne more line.\n")
    again = build(tmp_path, tiny, "--src", str(src))
    assert again.returncode == 0 and "is cached" in again.stdout
    recipe = src / "python_abi" / "recipe.yaml"
    recipe.write_text(recipe.read_text() + "# an input changes\n")
    changed = build(tmp_path, tiny, "--src", str(src))
    assert changed.returncode == 0 and "is cached" not in changed.stdout
