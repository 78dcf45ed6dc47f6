"""``scistacks run``: the researcher's laptop runs the image the hub runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from image.conftest import demo_images, demo_project  # noqa: F401  (fixtures)
from image.demo_support import scistacks

from builder import run
from builder.errors import RecordError
from builder.project import Project
from builder.records import ImageRecord, PlatformImage, PublishRecord, StageRecord

# ---------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("uid", "gid", "rootless", "as_root", "expected_user", "server_args"),
    [
        # root: the server runs as the image's user, as on a hub, unless --as-root
        (0, 0, False, False, "1000:1000", []),
        (0, 0, False, True, "0:0", ["--allow-root"]),
        (1000, 1000, False, False, "1000:1000", []),
        (1000, 20, False, False, "1000:20", []),
        (501, 20, False, False, "501:20", []),
        (501, 20, True, False, "0:0", ["--allow-root"]),
    ],
)
def test_user_mapping_keeps_files_the_callers(
    uid, gid, rootless, as_root, expected_user, server_args
):
    options, extra = run.user_mapping(uid, gid, rootless, as_root)
    assert options[options.index("--user") + 1] == expected_user
    assert extra == server_args
    # a uid jovyan's home does not belong to gets a home of its own
    assert ("--tmpfs" in options) == (uid not in (0, 1000) and not rootless)
    if "--tmpfs" in options:
        assert (
            options[options.index("--tmpfs") + 1] == f"/home/jovyan:uid={uid},gid={gid},mode=0755"
        )


def _can_create(folder: Path, uid: int) -> bool:
    proc = subprocess.run(["touch", str(folder / f"by-{uid}")], user=uid, capture_output=True)
    return proc.returncode == 0


def test_grant_write_adds_one_acl_entry_and_changes_no_owner(tmp_path):
    work = tmp_path / "work"
    work.mkdir(mode=0o755)
    work.chmod(0o755)
    (work / "notes.txt").write_text("mine\n")
    before = work.stat()
    assert not run.writable_by(work, 1000)
    run.grant_write(work, 1000)
    run.grant_write(work, 1000)  # idempotent
    after = work.stat()
    assert run.writable_by(work, 1000)
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert after.st_mode & 0o7707 == before.st_mode & 0o7707  # owner and other bits kept
    entries = run._read_acl(work)
    assert [(tag, perm, i) for tag, perm, i in entries if tag == run._USER] == [
        (run._USER, 7, 1000)
    ]
    assert (run._GROUP_OBJ, 5, run._NO_ID) in entries  # the group keeps r-x
    note = (work / "notes.txt").stat()
    assert (note.st_uid, note.st_mode & 0o777) == (before.st_uid, 0o644 & ~_umask())
    if os.geteuid() == 0:  # really: uid 1000 may create files there, others still not
        import tempfile

        outer = Path(tempfile.mkdtemp())  # tmp_path's parents are closed to uid 1000
        try:
            outer.chmod(0o755)
            shared = outer / "work"
            shared.mkdir(mode=0o755)
            assert not _can_create(shared, 1000)
            run.grant_write(shared, 1000)
            assert _can_create(shared, 1000) and not _can_create(shared, 1001)
            assert (shared / "by-1000").stat().st_uid == 1000
        finally:
            shutil.rmtree(outer)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_folder_uid_1000_may_write_to_gets_no_acl(tmp_path):
    work = tmp_path / "open"
    work.mkdir()
    work.chmod(0o777)
    assert run.writable_by(work, 1000)
    assert run._read_acl(work) == []


def _project(tmp_path: Path, *records: StageRecord) -> Project:
    (tmp_path / "distributions").mkdir(parents=True)
    project = Project(tmp_path)
    for record in records:
        record.save(project)
    return project


def test_resolve_prefers_tag_then_publish_record_then_local_build(tmp_path):
    reg = "ghcr.io/org"
    assert run.resolve_image(None, "pangeo:2026.11.27", reg) == (
        "ghcr.io/org/pangeo:2026.11.27",
        True,
    )
    assert run.resolve_image(None, "quay.io/x/y@sha256:ab", reg) == ("quay.io/x/y@sha256:ab", True)
    assert run.resolve_image(None, "demo", reg) == ("ghcr.io/org/demo:latest", True)
    digest = "sha256:" + "1" * 64
    record = PublishRecord(
        distribution="demo",
        repository="localhost:5000/ns/demo",
        digest=digest,
        lock_hash="0" * 64,
        immutable=["lock-000000000000"],
        mutable=["latest"],
        platforms={"linux/amd64": digest},
        artifacts={},
        signed={},
    )
    published = _project(tmp_path / "a", record)
    assert run.resolve_image(published, "demo", reg) == (f"localhost:5000/ns/demo@{digest}", True)
    image = PlatformImage(
        oci_platform="linux/amd64",
        ref="scistacks/d:1",
        image_id=digest,
        lock_hash="1" * 64,
        engine="native",
    )
    built = _project(
        tmp_path / "b",
        ImageRecord(distribution="demo", lock_hash="0" * 64, platforms={"linux-64": image}),
    )
    assert run.resolve_image(built, "demo", reg) == ("", False)
    assert run.local_build(built, "demo", "linux/amd64") == "scistacks/d:1"
    with pytest.raises(run.RunError, match="no linux/arm64 image"):
        run.local_build(built, "demo", "linux/arm64")
    # a damaged record is an error, never a silent fall back to another image
    published.publish_record("demo").write_text('{"repository": "x"')
    with pytest.raises(RecordError, match=r"build/publish/demo\.json: not valid JSON"):
        run.resolve_image(published, "demo", reg)


def test_docker_argv_publishes_on_loopback_and_keeps_the_token_out_of_argv(tmp_path):
    plan = run.RunPlan(
        image="img:1",
        platform="linux/amd64",
        port=8899,
        token="s3cr3t-token",
        workdir=tmp_path,
        name="scistacks-demo-8899",
        user_args=["--user", "501:20"],
    )
    argv = plan.docker_args(detach=True, tty=False)
    assert argv[argv.index("-p") + 1] == "127.0.0.1:8899:8888"
    assert argv[argv.index("-v") + 1] == f"{tmp_path}:/home/jovyan/work"
    assert "s3cr3t-token" not in " ".join(argv)  # `ps` on the host shows argv
    assert argv[argv.index("-e") + 1] == "JUPYTER_TOKEN"
    assert plan.url == "http://127.0.0.1:8899/?token=s3cr3t-token"


# ---------------------------------------------------------------- a real container


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _put_file(base: str, token: str, path: str) -> int:
    req = urllib.request.Request(
        f"{base}/api/contents/{path}?token={token}",
        data=json.dumps({"type": "file", "format": "text", "content": "from jupyter\n"}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=20) as resp:
        return resp.status


@pytest.mark.docker
def test_run_maps_the_callers_uid_onto_the_mounted_work_dir(demo_images, tmp_path):  # noqa: F811
    image = demo_images("linux/amd64")
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)  # whoever runs the tests: uid 4321 may write here
    (work / "data.csv").write_text("a,b\n1,2\n")
    plan = run.plan(None, image.ref, "localhost:5000/unused", workdir=work, uid=4321, gid=4321)
    try:
        assert run.start(plan, detach=True, wait=120) == 0
        base = f"http://127.0.0.1:{plan.port}"
        assert _status(f"{base}/api/contents/work") == 403  # no token, no entry
        assert _status(f"{base}/api/contents/work/data.csv?token={plan.token}") == 200
        assert _put_file(base, plan.token, "work/from-lab.txt") in (200, 201)
        made = work / "from-lab.txt"
        assert made.read_text() == "from jupyter\n"
        assert (made.stat().st_uid, made.stat().st_gid) == (4321, 4321)
        ports = subprocess.run(
            ["docker", "port", plan.name], capture_output=True, text=True, check=True
        ).stdout
        assert ports.strip() == f"8888/tcp -> 127.0.0.1:{plan.port}"
    finally:
        subprocess.run(["docker", "rm", "-f", plan.name], capture_output=True)


@pytest.mark.docker
def test_run_started_as_root_serves_as_uid_1000(demo_images, tmp_path):  # noqa: F811
    image = demo_images("linux/amd64")
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o755)  # the caller's folder, closed to others
    (work / "data.csv").write_text("a,b\n1,2\n")
    owner = work.stat().st_uid, work.stat().st_gid
    plan = run.plan(None, image.ref, "localhost:5000/unused", workdir=work, uid=0, gid=0)
    assert plan.server_args == [] and plan.user_args == ["--user", "1000:1000"]
    try:
        assert run.start(plan, detach=True, wait=120) == 0
        base = f"http://127.0.0.1:{plan.port}"
        assert _status(f"{base}/api/contents/work/data.csv?token={plan.token}") == 200
        assert _put_file(base, plan.token, "work/from-lab.txt") in (200, 201)
        top = subprocess.run(
            ["docker", "top", plan.name, "-eo", "pid,uid,args"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[1:]
        assert top and all(line.split()[1] == "1000" for line in top), top
        assert not any("--allow-root" in line for line in top)
        made = work / "from-lab.txt"
        assert made.read_text() == "from jupyter\n" and made.stat().st_uid == 1000
        # the caller's folder and files keep their owner
        assert (work.stat().st_uid, work.stat().st_gid) == owner
        assert (work / "data.csv").stat().st_uid == owner[0]
    finally:
        subprocess.run(["docker", "rm", "-f", plan.name], capture_output=True)


@pytest.mark.docker
@pytest.mark.parametrize(
    "platform",
    [None, pytest.param("linux/arm64", marks=pytest.mark.arm64, id="arm64-emulated")],
    ids=["host", "arm64-emulated"],
)
def test_run_cli_uses_the_local_build_and_prints_a_working_url(
    demo_images,  # noqa: F811
    demo_project,  # noqa: F811
    tmp_path,
    platform,
):
    wanted = platform or run.host_platform()
    demo_images(wanted)
    project = tmp_path / "demo"
    shutil.copytree(demo_project, project)
    shutil.rmtree(project / "build" / "publish", ignore_errors=True)  # unpublished: local build
    args = ["run", "demo", "--detach", "--workdir", str(tmp_path), "--pull", "never"]
    proc = scistacks(project, *args, *(["--platform", platform] if platform else []))
    name = None
    try:
        assert proc.returncode == 0, proc.stderr
        url = proc.stdout.strip().splitlines()[-1]
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        name = proc.stderr.split("running as ")[1].split(";")[0]
        base, token = url.split("/?token=")
        assert len(token) >= 32
        assert _status(f"{base}/api/status?token={token}") == 200
        assert _status(f"{base}/api/status?token=wrong") == 403
        machine = subprocess.run(
            ["docker", "exec", name, "uname", "-m"], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert machine == {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}[wanted]
    finally:
        if name:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_run_without_docker_is_one_line(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no docker on PATH
    proc = subprocess.run(
        [sys.executable, "-m", "builder", "run", "ghcr.io/org/demo:1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: docker is not installed (no `docker` on PATH)"
