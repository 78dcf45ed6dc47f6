"""The native engine: lock-exact, layered, reproducible images.

Unit tests (no docker) cover the layer plan, the layer tar format and the install into a
staging prefix (aarch64 packages on any host). The docker tests build the demo once per
platform (``demo_images`` in conftest.py) and look inside the images with ``docker run``;
expected values come from the lockfile (read with rattler) and the demo's own scripts,
never from the engine.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
import rattler
import yaml
from image.demo_support import copy_demo_project, scistacks

from builder.errors import BuildError
from builder.image import layers, native
from builder.lock import ChannelMap, read_lock
from builder.project import Project
from builder.publish.tags import content_tag
from devtools.conda_channel import build_package, index_channel

ENV = "/srv/conda/envs/notebook"
EPOCH = 1704067200


# ---------------------------------------------------------------- the layer plan


def sizes(names, base=1000):
    return {n: base + 37 * i for i, n in enumerate(names)}


def test_plan_puts_every_package_in_one_layer_parents_first():
    groups = [
        ("base", sizes([f"b{i}" for i in range(60)])),
        ("pangeo", sizes([f"p{i}" for i in range(40)])),
        ("gpu-ml", {"pytorch": 10_000_000, "tiny": 10}),
    ]
    plan = layers.plan(groups)
    placed = [p for layer in plan for p in layer.packages]
    assert sorted(placed) == sorted(p for _, g in groups for p in g)
    assert len(placed) == len(set(placed))
    order = [layer.group for layer in plan]
    assert order == sorted(order, key=["base", "pangeo", "gpu-ml"].index)
    assert ("pytorch",) in [layer.packages for layer in plan]  # a big package stands alone


def test_parent_layers_are_the_same_in_the_childs_image():
    base = sizes([f"lib{i}" for i in range(120)])
    alone = layers.plan([("base", base)])
    with_child = layers.plan([("base", base), ("child", sizes([f"c{i}" for i in range(30)]))])
    assert with_child[: len(alone)] == alone


def test_a_bump_or_a_new_package_touches_one_layer():
    names = [f"pkg{i}" for i in range(200)]
    before = layers.plan([("d", sizes(names))])
    bumped = dict(sizes(names))
    bumped["pkg17"] = int(bumped["pkg17"] * 1.2)
    assert layers.plan([("d", bumped)]) == before
    grown = layers.plan([("d", {**sizes(names), "newcomer": 500})])
    changed = set(grown) ^ set(before)
    assert len([layer for layer in changed if layer in grown]) == 1


def test_layer_count_stays_far_below_dockers_limit():
    import random

    rng = random.Random(7)
    groups = [
        (f"g{g}", {f"g{g}-p{i}": int(rng.lognormvariate(12, 2)) + 1 for i in range(400)})
        for g in range(5)
    ]
    plan = layers.plan(groups)
    assert len(plan) <= 3 * (layers.MAX_DEDICATED + layers.BUCKETS)
    assert sorted(p for layer in plan for p in layer.packages) == sorted(
        p for _, g in groups for p in g
    )


# ---------------------------------------------------------------- writing layers


def fake_prefix(root: Path, packages: dict[str, dict[str, bytes]], mode: int, mtime: int) -> Path:
    """A staging prefix as rattler leaves it: files plus conda-meta/*.json listing them."""
    (root / "conda-meta").mkdir(parents=True)
    for name, files in packages.items():
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.chmod(path, mode | (0o111 if rel.startswith("bin/") else 0))
            os.utime(path, (mtime, mtime))
        meta = {"name": name, "version": "1", "build": "0", "files": sorted(files)}
        (root / "conda-meta" / f"{name}-1-0.json").write_text(json.dumps(meta))
    (root / "conda-meta" / "history").write_text("")
    (root / "CACHEDIR.TAG").write_text("rattler cache tag")
    os.symlink("tool", root / "bin" / "tool-alias")
    return root


PACKAGES = {
    "tool": {"bin/tool": b"#!/bin/sh\necho tool\n", "share/tool/doc.txt": b"doc" * 100},
    "data": {"share/data/a.csv": os.urandom(4096), "share/data/b.csv": os.urandom(2048)},
    "lib": {"lib/libx.so": os.urandom(3000)},
}


def layer_digests(staging: Path, out: Path) -> list[str]:
    groups = {name: "demo" for name in PACKAGES}
    written, _ = native.write_env_layers(staging, groups, ("demo",), out)
    return [f.diff_id for _, f in written]


def test_env_layers_are_byte_identical_from_different_hosts(tmp_path):
    # same packages, different staging paths, file times and umask-ish modes
    one = fake_prefix(tmp_path / "a" / "prefix", PACKAGES, 0o644, 1_600_000_000)
    two = fake_prefix(tmp_path / "elsewhere" / "x" / "prefix", PACKAGES, 0o600, 1_700_000_000)
    first = layer_digests(one, tmp_path / "out1")
    assert first == layer_digests(two, tmp_path / "out2")
    for tar_path in sorted((tmp_path / "out1").glob("*.tar")):
        # the diff ID is the sha256 of the uncompressed tar, computed here independently
        digest = "sha256:" + hashlib.sha256(tar_path.read_bytes()).hexdigest()
        assert digest in first


def test_layer_tar_format(tmp_path):
    staging = fake_prefix(tmp_path / "prefix", PACKAGES, 0o600, 1_650_000_000)
    layer_digests(staging, tmp_path / "out")
    seen: dict[str, str] = {}
    for tar_path in sorted((tmp_path / "out").glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names, key=lambda n: n.split("/"))
        for m in members:
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (1000, 1000, "", "", EPOCH), m.name
            assert m.name.startswith("srv/conda"), m.name
            assert not m.pax_headers, m.name
            if not m.isdir():
                assert m.name not in seen, f"{m.name} in {tar_path.name} and {seen.get(m.name)}"
                seen[m.name] = tar_path.name
            parent = m.name.rsplit("/", 1)[0]
            if m.name != "srv/conda":
                assert parent in names, f"{m.name} has no parent entry in {tar_path.name}"
        modes = {m.name.removeprefix(ENV[1:] + "/"): m.mode for m in members if m.isfile()}
        if "bin/tool" in modes:
            assert modes["bin/tool"] == 0o755
            assert modes["share/tool/doc.txt"] == 0o644
    expected = {f"{ENV[1:]}/{rel}" for files in PACKAGES.values() for rel in files}
    expected |= {f"{ENV[1:]}/conda-meta/{n}-1-0.json" for n in PACKAGES}
    expected |= {f"{ENV[1:]}/conda-meta/history", f"{ENV[1:]}/bin/tool-alias"}
    assert set(seen) == expected  # CACHEDIR.TAG is rattler's, not the environment's


def test_changing_one_package_changes_one_layer(tmp_path):
    before = layer_digests(fake_prefix(tmp_path / "a", PACKAGES, 0o644, 0), tmp_path / "o1")
    bumped = {**PACKAGES, "data": {"share/data/a.csv": b"new data" * 999}}
    after = layer_digests(fake_prefix(tmp_path / "b", bumped, 0o644, 0), tmp_path / "o2")
    # what a registry or a node has to fetch again: layers whose digest is new
    assert len(set(after) - set(before)) == 1


# ---------------------------------------------------------------- install (no docker)

PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"


def placeholder_package(channel: Path, subdir: str) -> Path:
    """A package with a text prefix placeholder (devtools.conda_channel makes none)."""
    data = f"prefix={PLACEHOLDER}\n".encode()
    paths = {
        "paths": [
            {
                "_path": "etc/fixture.conf",
                "path_type": "hardlink",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_in_bytes": len(data),
                "prefix_placeholder": PLACEHOLDER,
                "file_mode": "text",
            }
        ],
        "paths_version": 1,
    }
    index = {
        "name": "fixture-conf",
        "version": "1.0",
        "build": "0",
        "build_number": 0,
        "subdir": subdir,
        "depends": [],
        "platform": "linux",
        "arch": "aarch64",
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, blob in [
            ("info/index.json", json.dumps(index).encode()),
            ("info/paths.json", json.dumps(paths).encode()),
            ("info/files", b"etc/fixture.conf\n"),
            ("etc/fixture.conf", data),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    path = channel / subdir / "fixture-conf-1.0-0.tar.bz2"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bz2.compress(raw.getvalue()))
    return path


@pytest.fixture
def fixture_project(tmp_path) -> Path:
    channel = tmp_path / "channel"
    build_package(
        channel, "fixture-data", "1.0", "0", "noarch", {"share/fixture/data.txt": "hello"}
    )
    build_package(
        channel,
        "fixture-tool",
        "1.0",
        "0",
        "linux-aarch64",
        {"bin/fixture-tool": "#!/bin/sh\necho aarch64\n"},
        depends=["fixture-data"],
    )
    placeholder_package(channel, "linux-aarch64")
    index_channel(channel)
    (tmp_path / "distributions" / "fixture").mkdir(parents=True)
    (tmp_path / "distributions" / "fixture" / "distribution.yml").write_text(
        "name: fixture\nchannels: [scistacks-fixture]\nplatforms: [linux-aarch64]\n"
        "dependencies: [fixture-tool, fixture-conf]\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.scistacks.channel-map]\nscistacks-fixture = "channel"\n'
    )
    proc = scistacks(tmp_path, "lock", "fixture")
    assert proc.returncode == 0, proc.stderr
    return tmp_path


def test_install_aarch64_lock_for_the_image_prefix(fixture_project):
    project = Project.at(fixture_project)
    locked = read_lock(project, "fixture")
    staging = fixture_project / "stage"
    native.install(
        project, locked, "linux-aarch64", staging, ChannelMap.from_sources(fixture_project)
    )
    assert (staging / "etc" / "fixture.conf").read_text() == f"prefix={ENV}\n"
    assert (staging / "bin" / "fixture-tool").read_text().endswith("echo aarch64\n")
    lock = rattler.LockFile.from_path(fixture_project / "lockfiles" / "fixture" / "conda-lock.yml")
    env = lock.default_environment()
    plat = next(p for p in env.platforms() if p.name == "linux-aarch64")
    expected = {str(r.name.normalized): r for r in env.conda_repodata_records_for_platform(plat)}
    metas = {}
    for path in (staging / "conda-meta").glob("*.json"):
        text = path.read_text()
        assert str(fixture_project) not in text, f"{path.name} names a build path"
        meta = json.loads(text)
        metas[meta["name"]] = meta
    assert sorted(metas) == sorted(expected)
    for name, meta in metas.items():
        assert (meta["version"], meta["build"]) == (
            str(expected[name].version),
            str(expected[name].build),
        )
        assert meta["url"] == expected[name].url  # canonical, as locked
        assert meta["url"].startswith("https://conda.anaconda.org/scistacks-fixture/")
    # verified archives are cached in the project's build folder
    assert sorted(
        p.name for p in (fixture_project / "build" / "cache" / "pkgs").rglob("*.tar.bz2")
    ) == sorted(r.file_name for r in expected.values())


def test_install_refuses_an_archive_that_is_not_the_locked_one(fixture_project):
    archive = fixture_project / "channel" / "noarch" / "fixture-data-1.0-0.tar.bz2"
    archive.write_bytes(archive.read_bytes() + b"tampered")
    project = Project.at(fixture_project)
    with pytest.raises(BuildError) as err:
        native.install(
            project,
            read_lock(project, "fixture"),
            "linux-aarch64",
            fixture_project / "stage",
            ChannelMap.from_sources(fixture_project),
        )
    message = str(err.value)
    assert "\n" not in message
    assert "fixture-data" in message and "hash mismatch" in message
    assert message.startswith("lockfiles/fixture/conda-lock.yml")
    assert not (fixture_project / "stage").exists()


def test_install_from_an_http_mirror(fixture_project):
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(fixture_project / "channel"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        mirror = f"scistacks-fixture=http://127.0.0.1:{server.server_address[1]}/"
        cmap = ChannelMap()
        cmap.add_entry(mirror, fixture_project, source="test")
        project = Project.at(fixture_project)
        staging = fixture_project / "stage"
        native.install(project, read_lock(project, "fixture"), "linux-aarch64", staging, cmap)
    finally:
        server.shutdown()
    assert (staging / "share" / "fixture" / "data.txt").read_text() == "hello"


# ---------------------------------------------------------------- docker: the demo's images


def docker_inspect(ref: str) -> dict | None:
    proc = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True)
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


def locked_records(project: Path, platform: str) -> dict[str, tuple[str, str, str]]:
    lock = rattler.LockFile.from_path(project / "lockfiles" / "demo" / "conda-lock.yml")
    env = lock.default_environment()
    plat = next(p for p in env.platforms() if p.name == platform)
    return {
        str(r.name.normalized): (
            str(r.version),
            str(r.build),
            r.sha256.hex() if r.sha256 else r.md5.hex(),
        )
        for r in env.conda_repodata_records_for_platform(plat)
    }


def locked_wheels(project: Path, platform: str) -> list[tuple[str, str, str]]:
    """(name, version, sha256) of the lock's ``manager: pip`` entries, read as plain YAML."""
    text = (project / "lockfiles" / "demo" / "conda-lock.yml").read_text()
    return sorted(
        (e["name"], e["version"], e["hash"]["sha256"])
        for e in yaml.safe_load(text)["package"]
        if e["manager"] == "pip" and e["platform"] == platform
    )


def platform_lock_hash(project: Path, platform: str) -> str:
    # the documented identity of a platform's packages (LockedDistribution.lock_hash): its
    # conda records, then its wheels
    records = locked_records(project, platform)
    blob = "".join(f"{platform} {n} {v} {b} {h}\n" for n, (v, b, h) in sorted(records.items()))
    blob += "".join(
        f"{platform} pypi:{n} {v} {h}\n" for n, v, h in locked_wheels(project, platform)
    )
    return hashlib.sha256(blob.encode()).hexdigest()


PROBE = f"""
echo "uid=$(id -u)"
echo "home=$HOME"
touch "$HOME/.probe" && echo "home_writable=yes"
echo "path0=${{PATH%%:*}}"
echo "demo_stats=$(command -v demo-stats)"
echo "started=${{DEMO_STARTED:-}}"
echo "machine=$(uname -m)"
echo "env_owner=$(stat -c %u {ENV}/conda-meta)"
echo "postbuild=$(head -n1 "$HOME/.scistacks-demo-postbuild")"
for f in {ENV}/conda-meta/*.json; do echo "meta=$(tr -d '\\n' < "$f")"; done
"""


def probe(ref: str, oci_platform: str) -> tuple[dict[str, str], list[dict]]:
    proc = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            oci_platform,
            ref,
            "sh",
            "-c",
            PROBE,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    values, metas = {}, []
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "meta":
            metas.append(json.loads(value))
        else:
            values[key] = value
    return values, metas


def check_demo_image(image, machine: str) -> None:
    values, metas = probe(image.ref, image.oci_platform)
    assert values["uid"] == "1000"
    assert values["home"] == "/home/jovyan"
    assert values["home_writable"] == "yes"
    assert values["path0"] == f"{ENV}/bin"
    assert values["demo_stats"] == f"{ENV}/bin/demo-stats"
    assert values["started"] == "1"  # the demo's start script exports DEMO_STARTED=1
    assert values["machine"] == machine
    assert values["env_owner"] == "1000"
    assert values["postbuild"] == "scistacks demo: postBuild ran"
    installed = {m["name"]: (m["version"], m["build"]) for m in metas}
    expected = {n: (v, b) for n, (v, b, _) in locked_records(image.project, image.platform).items()}
    assert installed == expected

    info = docker_inspect(image.ref)
    assert info["Id"] == image.image_id
    assert info["Architecture"] == {"x86_64": "amd64", "aarch64": "arm64"}[machine]
    labels = info["Config"]["Labels"]
    assert labels["io.scistacks.platform-lock-hash"] == platform_lock_hash(
        image.project, image.platform
    )
    assert (
        image.ref
        == f"scistacks/demo:{platform_lock_hash(image.project, image.platform)[:12]}-{info['Architecture']}"
    )
    assert labels["io.scistacks.distribution"] == "demo"
    # the version label is the tag publish gives the image (one content tag, not two)
    assert labels["org.opencontainers.image.version"] == content_tag(
        read_lock(Project.at(image.project), "demo")
    )
    assert (
        labels["org.opencontainers.image.version"]
        == "lock-" + labels["io.scistacks.lock-hash"][:12]
    )
    assert (
        labels["org.opencontainers.image.revision"] == "unknown"
    )  # the temp project is no git checkout
    assert not any("created" in key for key in labels)
    record = json.loads((image.project / "build" / "images" / "demo.json").read_text())
    assert record["platforms"][image.platform]["ref"] == image.ref
    assert record["lock_hash"] == labels["io.scistacks.lock-hash"]


@pytest.mark.docker
def test_demo_amd64_image(demo_images):
    check_demo_image(demo_images("linux/amd64"), "x86_64")


@pytest.mark.docker
@pytest.mark.arm64
def test_demo_arm64_image(demo_images):
    check_demo_image(demo_images("linux/arm64"), "aarch64")


@pytest.mark.docker
def test_image_holds_no_build_paths(demo_images):
    image = demo_images("linux/amd64")
    proc = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            image.ref,
            "grep",
            "-rlF",
            str(image.project.parent),
            "/srv",
            "/usr/local",
            "/etc/profile.d",
            "/home/jovyan",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and proc.stdout == "", proc.stdout  # grep: 1 = no match


@pytest.mark.docker
def test_same_lock_elsewhere_gives_the_same_image(demo_images, tmp_path):
    first = demo_images("linux/amd64")
    other = copy_demo_project(tmp_path / "somewhere" / "else")
    tag = f"scistacks-test/demo-rebuild:{uuid.uuid4().hex[:8]}"
    try:
        proc = scistacks(other, "build", "demo", "--platform", "linux/amd64", "--tag", tag)
        assert proc.returncode == 0, proc.stderr
        again = docker_inspect(tag)
        assert again["RootFS"]["Layers"] == docker_inspect(first.ref)["RootFS"]["Layers"]
        assert again["Id"] == first.image_id
        # and an unchanged lock is not rebuilt
        proc = scistacks(other, "build", "demo", "--platform", "linux/amd64", "--tag", tag)
        assert proc.returncode == 0 and "skipped" in proc.stderr
    finally:
        subprocess.run(["docker", "image", "rm", "--no-prune", tag], capture_output=True)


# ---------------------------------------------------------------- bad input


def assert_one_line_failure(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 1 and one error line, the last thing printed (progress lines may precede it)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def assert_no_image(ref: str) -> None:
    if shutil.which("docker"):
        assert docker_inspect(ref) is None


@pytest.fixture
def demo_copy(demo_project, tmp_path) -> Path:
    dest = tmp_path / "demo"
    shutil.copytree(demo_project, dest, ignore=shutil.ignore_patterns("build"))
    return dest


def test_unknown_platform(demo_copy):
    tag = f"scistacks-test/bad:{uuid.uuid4().hex[:8]}"
    proc = scistacks(demo_copy, "build", "demo", "--platform", "linux/s390x", "--tag", tag)
    assert_one_line_failure(proc, "unknown platform", "linux/s390x")
    assert_no_image(tag)


def test_stale_lock(demo_copy):
    spec = demo_copy / "distributions" / "demo" / "distribution.yml"
    spec.write_text(spec.read_text().replace("demo-data 1.0.*", "demo-data 1.1.*"))
    tag = f"scistacks-test/bad:{uuid.uuid4().hex[:8]}"
    proc = scistacks(demo_copy, "build", "demo", "--platform", "linux/amd64", "--tag", tag)
    assert_one_line_failure(proc, "out of date", "lockfiles/demo/conda-lock.yml")
    assert_no_image(tag)


def test_no_docker_daemon(demo_copy, tmp_path):
    if not shutil.which("docker"):
        pytest.skip("needs the docker client (not a daemon)")
    proc = scistacks(
        demo_copy,
        "build",
        "demo",
        "--platform",
        "linux/amd64",
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"},
    )
    assert_one_line_failure(proc, "docker daemon not reachable", "no-daemon.sock")


@pytest.mark.docker
def test_hash_mismatch(demo_copy):
    archive = next(
        (demo_copy / "distributions" / "demo" / "channel" / "noarch").glob("demo-models-*.tar.bz2")
    )
    locked = {p.file_name for p in read_lock(Project.at(demo_copy), "demo").packages["linux-64"]}
    for candidate in sorted(archive.parent.glob("demo-models-*.tar.bz2")):
        if candidate.name in locked:
            archive = candidate
    archive.write_bytes(b"not the locked archive")
    tag = f"scistacks-test/bad:{uuid.uuid4().hex[:8]}"
    proc = scistacks(demo_copy, "build", "demo", "--platform", "linux/amd64", "--tag", tag)
    assert_one_line_failure(proc, "demo-models", "hash mismatch", "lockfiles/demo/conda-lock.yml")
    assert_no_image(tag)


@pytest.mark.docker
def test_failing_post_build_leaves_no_tag(demo_copy):
    script = demo_copy / "distributions" / "demo" / "postBuild"
    script.write_text(script.read_text() + "\necho 'postBuild broke' >&2\nexit 3\n")
    tag = f"scistacks-test/bad:{uuid.uuid4().hex[:8]}"
    proc = scistacks(demo_copy, "build", "demo", "--platform", "linux/amd64", "--tag", tag)
    assert_one_line_failure(proc, "postBuild", "postbuild.log")
    assert (
        "postBuild broke"
        in (demo_copy / "build" / "native" / "demo" / "linux-64" / "postbuild.log").read_text()
    )
    assert_no_image(tag)
    leftovers = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "scistacks-build/*"],
        capture_output=True,
        text=True,
    ).stdout
    assert tag.replace("/", "-").replace(":", "-") not in leftovers


@pytest.mark.docker
@pytest.mark.parametrize("size", ["64k", "1600k", "2400k"])  # fetching, installing, layering
def test_full_build_folder_is_one_line_and_leaves_no_partial_files(demo_copy, size):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    build = demo_copy / "build"
    build.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(build)], check=True)
    tag = f"scistacks-test/full:{uuid.uuid4().hex[:8]}"
    try:
        proc = scistacks(demo_copy, "build", "demo", "--platform", "linux/amd64", "--tag", tag)
        assert_one_line_failure(proc, "build", "No space left on device")
        leftovers = [p.name for p in build.rglob("*") if p.name.endswith((".tmp", ".tar"))]
        assert leftovers == [] or all(not n.endswith(".tmp") for n in leftovers), leftovers
        # temp files are hidden; rattler's cache keeps its lock file, which is no partial file
        hidden = [str(p.relative_to(build)) for p in build.rglob(".*") if p.is_file()]
        hidden = [h for h in hidden if not h.endswith("/.cache.lock")]
        assert hidden == [], hidden
        assert_no_image(tag)
        assert not (build / "images" / "demo.json").exists()
    finally:
        subprocess.run(["umount", "-l", str(build)], check=False)


@pytest.mark.docker
def test_an_image_from_another_commit_is_rebuilt_not_reused(demo_copy):
    """Same lock, other sources: the local image is rebuilt, so its labels name this commit."""
    tag = f"scistacks-test/relabel:{uuid.uuid4().hex[:8]}"
    try:
        proc = scistacks(demo_copy, "build", "demo", "--platform", "linux/amd64", "--tag", tag)
        assert proc.returncode == 0, proc.stderr
        assert docker_inspect(tag)["Config"]["Labels"]["org.opencontainers.image.revision"] == (
            "unknown"
        )
        git = ["git", "-C", str(demo_copy), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "spec"], check=True)
        sha = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        proc = scistacks(demo_copy, "build", "demo", "--platform", "linux/amd64", "--tag", tag)
        assert proc.returncode == 0, proc.stderr
        assert "skipped" not in proc.stderr
        labels = docker_inspect(tag)["Config"]["Labels"]
        assert labels["org.opencontainers.image.revision"] == sha
        # and now that it matches, it is reused
        proc = scistacks(demo_copy, "build", "demo", "--platform", "linux/amd64", "--tag", tag)
        assert proc.returncode == 0 and "skipped" in proc.stderr
    finally:
        subprocess.run(["docker", "image", "rm", "--no-prune", tag], capture_output=True)


# ---------------------------------------------------------------- docker: PyPI wheels

PYPI_INDEX = "https://pypi.scistacks-demo.invalid/simple"
PYDEMO_START = """#!/bin/bash
# the locked wheels sit in the environment's site-packages for Debian's python3.11
export PYTHONPATH="${NB_PYTHON_PREFIX}/lib/python3.11/site-packages${PYTHONPATH:+:${PYTHONPATH}}"
exec "$@"
"""


def _toml_table(name: str, table: dict) -> list[str]:
    scalars = [f'"{k}" = "{v}"' for k, v in table.items() if not isinstance(v, dict)]
    out = [f"[{name}]", *scalars]
    for key, value in table.items():
        if isinstance(value, dict):
            out += _toml_table(f"{name}.{key}", value)
    return out


@pytest.fixture(scope="module")
def pypi_project(demo_project, tmp_path_factory) -> Path:
    """The demo project with a child distribution, ``pydemo``, whose ``pip:`` section
    locks the demo's wheels from an index mapped to distributions/demo/wheels."""
    import tomllib

    root = tmp_path_factory.mktemp("pypi-project")
    shutil.copytree(demo_project, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("build"))
    config = tomllib.loads((root / "pyproject.toml").read_text())
    tool = config.setdefault("tool", {}).setdefault("scistacks", {})
    tool.setdefault("pypi-index", PYPI_INDEX)
    tool.setdefault("pypi-index-map", {})[tool["pypi-index"]] = "distributions/demo/wheels"
    (root / "pyproject.toml").write_text("\n".join(_toml_table("tool.scistacks", tool)) + "\n")
    folder = root / "distributions" / "pydemo"
    folder.mkdir()
    (folder / "start").write_text(PYDEMO_START)
    (folder / "distribution.yml").write_text(
        "name: pydemo\nextends: demo\npip:\n  - demo-pyutil\npip_python: '3.11'\n"
        "start: start\nimports: [demo_pyutil]\n"
    )
    proc = scistacks(root, "lock", "pydemo")
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def pypi_images(pypi_project):
    """``pypi_images("linux/amd64") -> (ref, seconds)``: pydemo built once per platform."""
    import time

    built: dict[str, tuple[str, float]] = {}

    def get(oci: str) -> tuple[str, float]:
        if oci not in built:
            started = time.monotonic()
            proc = scistacks(pypi_project, "build", "pydemo", "--platform", oci, "--rebuild")
            assert proc.returncode == 0, proc.stderr
            record = json.loads((pypi_project / "build/images/pydemo.json").read_text())
            platform = {"linux/amd64": "linux-64", "linux/arm64": "linux-aarch64"}[oci]
            built[oci] = (record["platforms"][platform]["ref"], time.monotonic() - started)
        return built[oci]

    return get


def locked_pip(project: Path, name: str, platform: str) -> dict[str, str]:
    """name -> version of the lock's pip entries, as conda-lock itself reads them."""
    from conda_lock.lockfile import parse_conda_lock_file

    lock = parse_conda_lock_file(project / "lockfiles" / name / "conda-lock.yml")
    return {
        p.name: p.version for p in lock.package if p.manager == "pip" and p.platform == platform
    }


WHEELS_PROBE = """
import importlib.metadata as md, pathlib, subprocess, sys
site = pathlib.Path(sys.argv[1])
for d in sorted(site.glob("*.dist-info")):
    if (d / "INSTALLER").read_text().strip() == "scistacks":
        dist = md.PathDistribution(d)
        rows = (d / "RECORD").read_text().splitlines()
        pycs = [r for r in rows if r.split(",")[0].endswith(".pyc")]
        print("wheel", dist.metadata["Name"], dist.version, len(pycs))
import demo_pyutil
print("module", demo_pyutil.__file__)
"""


def check_pypi_image(project: Path, ref: str, oci: str, machine: str) -> None:
    platform = {"linux/amd64": "linux-64", "linux/arm64": "linux-aarch64"}[oci]
    site = f"{ENV}/lib/python3.11/site-packages"
    run = ["docker", "run", "--rm", "--network", "none", "--platform", oci, ref]
    script = subprocess.run(
        [*run, "sh", "-c", 'uname -m; head -n1 "$(command -v demo-warmest)"; demo-warmest'],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert script.returncode == 0, script.stderr
    lines = script.stdout.splitlines()
    assert lines[:2] == [machine, "#!/usr/bin/python3.11"]
    assert lines[2].startswith("warmest station: "), lines
    probe = subprocess.run(
        [*run, "python3", "-c", WHEELS_PROBE, site], capture_output=True, text=True, timeout=300
    )
    assert probe.returncode == 0, probe.stderr
    wheels_found = {}
    for line in probe.stdout.splitlines():
        kind, *rest = line.split()
        if kind == "wheel":
            name, version, pycs = rest
            assert int(pycs) >= 1, line  # compiled in the image, listed in RECORD
            wheels_found[name] = version
        else:
            assert rest == [f"{site}/demo_pyutil.py"]
    expected = locked_pip(project, "pydemo", platform)
    assert set(expected) == {"demo-pyutil", "demo-pylib-extra"}
    assert wheels_found == expected
    # no path of the build machine in what the wheels installed (RECORD, scripts, pyc)
    grep = subprocess.run([*run, "grep", "-rlF", str(project.parent), ENV], capture_output=True)
    assert grep.returncode == 1 and grep.stdout == b"", grep.stdout

    # the wheels have a layer group of their own, above every conda layer
    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", ref],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()[::-1]  # fmt: skip
    env = [h.removeprefix("scistacks env: ") for h in history if h.startswith("scistacks env: ")]
    pypi = [h for h in env if h.startswith("pypi/")]
    assert pypi and env[-1] == "conda-meta"
    assert env[len(env) - 1 - len(pypi) : -1] == pypi  # all conda layers below them
    in_pypi = {p for h in pypi for p in h.split(" (", 1)[1].rstrip(")").split(", ")}
    assert in_pypi == set(expected)


@pytest.mark.docker
def test_pypi_wheels_amd64_image(pypi_project, pypi_images):
    ref, _ = pypi_images("linux/amd64")
    check_pypi_image(pypi_project, ref, "linux/amd64", "x86_64")


@pytest.mark.docker
@pytest.mark.arm64
def test_pypi_wheels_arm64_image(pypi_project, pypi_images):
    ref, _ = pypi_images("linux/arm64")
    check_pypi_image(pypi_project, ref, "linux/arm64", "aarch64")


@pytest.mark.docker
def test_a_wheel_that_is_not_the_locked_one_fails_the_build(pypi_project, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(pypi_project, project, ignore=shutil.ignore_patterns("build"))
    wheel = next((project / "distributions/demo/wheels").glob("demo_pyutil-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    tag = f"scistacks-test/bad:{uuid.uuid4().hex[:8]}"
    proc = scistacks(project, "build", "pydemo", "--platform", "linux/amd64", "--tag", tag)
    assert_one_line_failure(
        proc, "lockfiles/pydemo/conda-lock.yml", "pypi demo-pyutil", "hash mismatch"
    )
    assert_no_image(tag)
    assert not list((project / "build" / "cache" / "pkgs" / "pypi").glob("demo_pyutil-*"))
