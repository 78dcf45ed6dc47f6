"""Finishing the environment in the target image: link order, .pyc ownership, post-link
scripts run in the image (under emulation for arm64), and a failing one failing the build;
and the system layers normalised so that a rebuild after ``docker builder prune`` gives the
same image."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from image.demo_support import scistacks

from builder.image import link, native, normalise
from builder.lock.model import LockedPackage
from devtools.conda_channel import build_package, index_channel

ENV = native.ENV_PREFIX


def pkg(name: str, *depends: str, build: str = "h0_3") -> LockedPackage:
    return LockedPackage(
        name, "1.0", build, "linux-64", f"https://x/{name}.conda", "", "", depends=depends
    )


def test_dependency_order_puts_dependencies_first():
    packages = {
        p.name: p
        for p in [
            pkg("jupyterlab", "python >=3.11", "jupyter_server"),
            pkg("jupyter_server", "python", "tornado >=6"),
            pkg("tornado", "python", "libgcc"),
            pkg("python", "libgcc", "openssl >=3"),
            pkg("libgcc"),
            pkg("openssl", "libgcc"),
            pkg("cycle-a", "cycle-b"),
            pkg("cycle-b", "cycle-a"),
        ]
    }
    order = [p.name for p in link.dependency_order(packages)]
    assert sorted(order) == sorted(packages)
    for name, p in packages.items():
        for dep in p.depends:
            dep = dep.split()[0]
            if dep in packages and {name, dep} != {"cycle-a", "cycle-b"}:
                assert order.index(dep) < order.index(name), (dep, name)


def test_source_of_a_compiled_file():
    rel = "lib/python3.11/site-packages/numpy/__pycache__/version.cpython-311.pyc"
    assert link.source_of(rel) == "lib/python3.11/site-packages/numpy/version.py"
    assert link.source_of("lib/python3.11/__pycache__/os.cpython-311.opt-1.pyc") == (
        "lib/python3.11/os.py"
    )
    assert link.source_of("lib/python3.11/site-packages/numpy/version.py") is None
    assert link.source_of("share/x.pyc") is None  # not in a __pycache__


def test_compiled_files_join_their_sources_package_and_layer(tmp_path):
    staging = tmp_path / "prefix"
    sp = "lib/python3.11/site-packages"
    files = {
        "numpy": [f"{sp}/numpy/__init__.py", f"{sp}/numpy/version.py"],
        "six": [f"{sp}/six.py"],
    }
    (staging / "conda-meta").mkdir(parents=True)
    for name, rels in files.items():
        for rel in rels:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text("x = 1\n")
        record = {"name": name, "version": "1", "build": "0", "files": rels}
        (staging / "conda-meta" / f"{name}-1-0.json").write_text(json.dumps(record))
    compiled = {
        f"{sp}/numpy/__pycache__/__init__.cpython-311.pyc": "numpy",
        f"{sp}/numpy/__pycache__/version.cpython-311.pyc": "numpy",
        f"{sp}/__pycache__/six.cpython-311.pyc": "six",
    }
    for rel in [*compiled, f"{sp}/__pycache__/orphan.cpython-311.pyc"]:
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_bytes(b"pyc")
    assert link.register_compiled(staging) == 3
    for name in files:
        record = json.loads((staging / "conda-meta" / f"{name}-1-0.json").read_text())
        mine = {rel for rel, owner in compiled.items() if owner == name}
        assert mine <= set(record["files"])
        assert {p["_path"] for p in record["paths_data"]["paths"]} == mine
        assert {p["path_type"] for p in record["paths_data"]["paths"]} == {"pyc_file"}
    assert link.register_compiled(staging) == 0  # idempotent
    # each compiled file is in its package's layer, not the loose one
    written, _ = native.write_env_layers(
        staging, {"numpy": "d", "six": "d"}, ("d",), tmp_path / "layers"
    )
    import tarfile

    by_layer = {}
    for plan, layer in written:
        with tarfile.open(layer.path) as tar:
            by_layer[plan.packages if plan else None] = set(tar.getnames())
    for rel, owner in compiled.items():
        holders = [k for k, names in by_layer.items() if f"{ENV.lstrip('/')}/{rel}" in names]
        assert holders == [(owner,)] or (holders and owner in holders[0]), (rel, holders)


def test_normalise_drops_logs_and_clamps_times(tmp_path):
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mtime in [
            ("usr/bin/tool", 1_800_000_000),
            ("usr/share/doc/old.txt", 1_000_000_000),
            ("var/log/apt/history.log", 1_800_000_000),
            ("var/log/dpkg.log", 1_800_000_000),
            ("var/cache/ldconfig/aux-cache", 1_800_000_000),
            ("etc/.wh.removed", 1_800_000_000),
        ]:
            info = tarfile.TarInfo(name)
            info.mtime, info.size, info.uname = mtime, 3, "someone"
            info.pax_headers = {"atime": "1800000001.5", "SCHILY.xattr.security.capability": "x"}
            tar.addfile(info, io.BytesIO(b"abc"))
    raw.seek(0)
    one = normalise.normalise_layer(raw, tmp_path / "a.tar", 1704067200)
    raw.seek(0)
    two = normalise.normalise_layer(raw, tmp_path / "b.tar", 1704067200)
    assert one.diff_id == two.diff_id
    with tarfile.open(one.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["etc/.wh.removed", "usr/bin/tool", "usr/share/doc/old.txt"]
    assert members["usr/bin/tool"].mtime == 1704067200
    assert members["usr/share/doc/old.txt"].mtime == 1_000_000_000  # older: kept
    assert members["usr/bin/tool"].uname == ""
    assert "atime" not in members["usr/bin/tool"].pax_headers
    assert members["usr/bin/tool"].pax_headers["SCHILY.xattr.security.capability"] == "x"


def test_in_image_scripts_agree_with_the_engine():
    entrypoint = native._script("entrypoint.sh").decode()
    assert native.START in entrypoint
    assert ENV in native._script("profile.sh").decode()


# ---------------------------------------------------------------- docker

HOOK = """\
set -e
mkdir -p "$PREFIX/share/hook"
echo "$PKG_NAME $PKG_VERSION $PKG_BUILDNUM $(uname -m)" > "$PREFIX/share/hook/ran.txt"
test -f "$PREFIX/share/hook/dep.txt"  # its dependency is linked (and ran) before it
echo "hook was here" >> "$PREFIX/.messages.txt"
"""


def hook_project(root: Path, *, failing: bool = False) -> Path:
    channel = root / "channel"
    build_package(
        channel,
        "hook-dep",
        "1.0",
        "0",
        "noarch",
        {
            "bin/.hook-dep-post-link.sh": 'mkdir -p "$PREFIX/share/hook"; echo dep > "$PREFIX/share/hook/dep.txt"\n'
        },
    )
    script = "echo 'cannot do that' >&2; exit 3\n" if failing else HOOK
    build_package(
        channel,
        "hook",
        "2.1",
        "h1_4",
        "noarch",
        {"bin/.hook-post-link.sh": script},
        depends=["hook-dep"],
        build_number=4,
    )
    index_channel(channel)
    spec = root / "distributions" / "hook" / "distribution.yml"
    spec.parent.mkdir(parents=True)
    spec.write_text(
        "name: hook\nchannels: [scistacks-hook]\nplatforms: [linux-64, linux-aarch64]\n"
        "dependencies: [hook]\nbase_image: 'scistacks/debian:bookworm-{arch}'\n"
    )
    (root / "pyproject.toml").write_text(
        '[tool.scistacks.channel-map]\nscistacks-hook = "channel"\n'
    )
    proc = scistacks(root, "lock", "hook")
    assert proc.returncode == 0, proc.stderr
    return root


def in_image(ref: str, platform: str, *cmd: str) -> str:
    proc = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--platform", platform, ref, *cmd],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.docker
@pytest.mark.parametrize(
    "platform,machine",
    [("linux/amd64", "x86_64"), pytest.param("linux/arm64", "aarch64", marks=pytest.mark.arm64)],
)
def test_post_link_scripts_run_in_the_target_image(tmp_path, platform, machine):
    root = hook_project(tmp_path)
    tag = f"scistacks-test/hook:{uuid.uuid4().hex[:8]}"
    try:
        proc = scistacks(root, "build", "hook", "--platform", platform, "--tag", tag)
        assert proc.returncode == 0, proc.stderr
        assert "post-link scripts: hook-dep, hook" in proc.stderr
        ran = in_image(tag, platform, "cat", f"{ENV}/share/hook/ran.txt")
        assert ran.split() == ["hook", "2.1", "4", machine]
        listing = in_image(tag, platform, "ls", "-a", ENV)
        assert ".messages.txt" not in listing.split()
        log = (
            root
            / "build"
            / "native"
            / "hook"
            / {"linux/amd64": "linux-64", "linux/arm64": "linux-aarch64"}[platform]
            / "link.log"
        ).read_text()
        assert "hook was here" in log
    finally:
        subprocess.run(["docker", "image", "rm", "--no-prune", tag], capture_output=True)


@pytest.mark.docker
def test_a_failing_post_link_script_fails_the_build(tmp_path):
    root = hook_project(tmp_path, failing=True)
    tag = f"scistacks-test/hook:{uuid.uuid4().hex[:8]}"
    proc = scistacks(root, "build", "hook", "--platform", "linux/amd64", "--tag", tag)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert "post-link script of hook failed with exit code 3" in errors[0]
    assert "link.log" in errors[0] and "Traceback" not in proc.stderr
    assert subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode
    assert not (root / "build" / "images" / "hook.json").exists()


@pytest.mark.docker
def test_rebuild_without_cache_gives_the_same_image(tmp_path):
    """The whole image, apt layer included, comes back byte for byte with no cache: each
    build runs every step anew (``SCISTACKS_NO_CACHE``: ``--no-cache``, what ``docker
    builder prune -af`` does to the next build, without emptying the cache of other
    images' builds), and the images are removed in between."""
    root = hook_project(tmp_path)
    spec = root / "distributions" / "hook" / "distribution.yml"
    spec.write_text(spec.read_text() + "apt: [libsqlite3-0]\n")
    assert scistacks(root, "lock", "hook").returncode == 0
    tags = [f"scistacks-test/hook:{uuid.uuid4().hex[:8]}" for _ in range(2)]
    ids = []
    try:
        for tag in tags:
            proc = scistacks(
                root,
                "build",
                "hook",
                "--platform",
                "linux/amd64",
                "--tag",
                tag,
                "--rebuild",
                env={"SCISTACKS_NO_CACHE": "1"},
            )
            assert proc.returncode == 0, proc.stderr
            info = json.loads(
                subprocess.run(
                    ["docker", "image", "inspect", tag], capture_output=True, text=True
                ).stdout
            )[0]
            ids.append((info["Id"], info["RootFS"]["Layers"]))
            system = root / "build" / "native" / "hook" / "linux-64" / "system" / "build-image-id"
            subprocess.run(
                ["docker", "image", "rm", tag, system.read_text().strip()], capture_output=True
            )
        assert ids[0] == ids[1]
    finally:
        for tag in tags:
            subprocess.run(["docker", "image", "rm", "--no-prune", tag], capture_output=True)
