"""builder/docker.py, the docker CLI boundary: every way docker can be missing, silent or
failing is one line of the caller's error type."""

from __future__ import annotations

import shutil
import socket
import time
import uuid

import pytest
from docker_support import BASE_IMAGES

from builder import docker
from builder.errors import BuildError, PublishError, SmokeError

needs_client = pytest.mark.skipif(not shutil.which("docker"), reason="no docker client on PATH")


def _no_pipe(saved, to_load):  # save_load never gets to call it
    raise AssertionError("docker ran")


def test_without_docker_every_call_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not docker.available()
    with open(tmp_path / "out", "wb") as out:
        calls = [
            lambda: docker.call(["ps"], error=SmokeError),
            lambda: docker.run(["tag", "a", "b"], what="cannot tag a", error=SmokeError),
            lambda: docker.run(["ps"], what="x", error=SmokeError, log=tmp_path / "log"),
            lambda: docker.inspect_image("img:1", error=SmokeError),
            lambda: docker.require(SmokeError),
            lambda: docker.server_platform(SmokeError),
            lambda: docker.foreground(["ps"], error=SmokeError),
            lambda: docker.Container(["run", "img:1"], "c", out, out, error=SmokeError),
            lambda: docker.save_load("img:1", _no_pipe, error=SmokeError),
        ]
        for call in calls:
            with pytest.raises(SmokeError) as info:
                call()
            assert str(info.value) == docker.NOT_INSTALLED
    assert docker.quiet(["rm", "-f", "c"]) is None  # clean-up never raises


@needs_client
def test_an_unreachable_daemon_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    with pytest.raises(BuildError) as info:
        docker.require(BuildError)
    message = str(info.value)
    assert message.startswith(
        f"docker daemon not reachable at DOCKER_HOST=unix://{tmp_path}/no-daemon.sock ("
    )
    assert message.endswith("; start dockerd or run scripts/setup-host.sh")
    assert "\n" not in message
    with pytest.raises(PublishError) as info:
        docker.run(["tag", "a:1", "b:1"], what="cannot tag a:1", error=PublishError)
    assert str(info.value).startswith("cannot tag a:1: Cannot connect to the Docker daemon")
    assert docker.inspect_image("a:1") is None


@needs_client
def test_a_daemon_that_never_answers_times_out_in_one_line(tmp_path, monkeypatch):
    with socket.socket(socket.AF_UNIX) as silent:  # accepts connections, never replies
        silent.bind(str(tmp_path / "silent.sock"))
        silent.listen(8)
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/silent.sock")
        started = time.monotonic()
        with pytest.raises(SmokeError) as info:
            docker.call(["image", "ls"], error=SmokeError, timeout=2)
        assert str(info.value) == "docker image did not answer within 2s"
        assert time.monotonic() - started < 30


@pytest.mark.docker
def test_the_real_daemon():
    ref = BASE_IMAGES["amd64"]
    image = docker.inspect_image(ref)
    assert image["Id"] == docker.image_id(ref)
    assert image["Architecture"] == "amd64"
    assert docker.server_platform().startswith("linux/")
    missing = f"scistacks-test/missing-{uuid.uuid4().hex[:8]}:never"
    assert docker.inspect_image(missing) is None
    with pytest.raises(BuildError) as info:
        docker.tag(missing, "scistacks-test/other:never", error=BuildError)
    assert str(info.value).startswith("docker tag scistacks-test/other:never failed: ")
    assert "No such image" in str(info.value)


@pytest.mark.docker
def test_a_container_past_its_time_is_killed_by_name(tmp_path):
    name = f"scistacks-test-{uuid.uuid4().hex[:8]}"
    args = ["run", "--rm", "--name", name, "--network", "none", BASE_IMAGES["amd64"]]
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        container = docker.Container([*args, "sleep", "300"], name, out, err)
        try:
            assert container.wait(1) is None  # still running
            assert container.stop(grace=30) != 0
        finally:
            docker.quiet(["rm", "-f", name])
    left = docker.call(["ps", "-aq", "--filter", f"name=^{name}$"])
    assert left.returncode == 0 and left.stdout.strip() == ""
