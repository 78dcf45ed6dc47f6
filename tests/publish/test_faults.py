"""Publish against registry processes of the test's own: killed mid-push, one that
wants credentials (which must never show up anywhere they could leak), and one behind a
proxy of the test's own that answers 500 to manifest-list PUTs."""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import pytest
from image.demo_support import scistacks

from builder.registry import DOCKER_LIST, OCI_INDEX, Registry


def _copy(smoked: Path, dest: Path) -> Path:
    shutil.copytree(smoked, dest, ignore=shutil.ignore_patterns("publish"))
    return dest


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_registry_killed_mid_push_moves_no_tag_and_a_rerun_completes(
    smoked, private_registry, tmp_path
):
    project = _copy(smoked, tmp_path / "demo")
    private_registry.ensure()
    target = f"{private_registry.address}/faults"
    uploads = private_registry.state_dir / "data/docker/registry/v2/repositories/faults/demo"
    # an earlier release that `latest` names: it must still name it after the failure
    client = Registry(private_registry.address)
    earlier = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }
    ).encode()
    for tag in ("2025.01.01", "latest"):
        client.put_manifest("faults/demo", tag, earlier, "application/vnd.oci.image.index.v1+json")
    before = client.manifest("faults/demo", "latest")[2]
    env = {**os.environ, "SCISTACKS_ROOT": str(project)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "builder", "publish", "demo", "--registry", target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not any((uploads / "_uploads").glob("*")):  # layer bytes are on their way
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the push never started"
        time.sleep(0.02)
    private_registry.stop(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=600)  # docker retries each layer for ~50 s first

    assert proc.returncode == 1
    line = _one_line(_errors_only(stderr))
    assert line.startswith("error: ") and private_registry.address in line
    assert not (project / "build" / "publish" / "demo.json").exists()

    private_registry.ensure()  # back, on the same storage
    assert client.manifest("faults/demo", "latest")[2] == before  # latest did not move
    new_tags = set(client.tags("faults/demo")) - {"2025.01.01", "latest"}
    assert not [t for t in new_tags if not t.endswith(("-amd64", "-arm64"))], new_tags

    rerun = scistacks(project, "publish", "demo", "--registry", target)
    assert rerun.returncode == 0, rerun.stderr
    record = json.loads((project / "build" / "publish" / "demo.json").read_text())
    assert client.manifest("faults/demo", "latest")[2] == record["digest"]
    assert set(record["platforms"]) == {"linux/amd64", "linux/arm64"}


def _errors_only(stderr: str) -> str:
    """publish reports progress on stderr too ("pushed … in 3s"); the failure is one line."""
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("pushed "))


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_credentials_never_appear_in_output_contexts_layers_or_the_registry(
    smoked, private_registry, tmp_path
):
    user, password = "ci-bot", f"pw-{uuid.uuid4().hex}"
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    htpasswd.write_text(f"{user}:{hashed}\n")
    private_registry.htpasswd = htpasswd
    private_registry.ensure()
    target = f"{private_registry.address}/private"

    project = _copy(smoked, tmp_path / "demo")
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    outputs = []

    # without credentials: refused, in one line, nothing pushed
    (docker_config / "config.json").write_text("{}")
    env = {"DOCKER_CONFIG": str(docker_config)}
    denied = scistacks(project, "publish", "demo", "--registry", target, env=env)
    assert denied.returncode == 1
    assert "unauthorized" in _one_line(_errors_only(denied.stderr)).lower()

    # with them, in the docker config (for docker push) and the environment (for us)
    auths = {"auths": {private_registry.address: {"auth": encoded}}}
    (docker_config / "config.json").write_text(json.dumps(auths))
    env = {
        "DOCKER_CONFIG": str(docker_config),
        "SCISTACKS_REGISTRY_USER": user,
        "SCISTACKS_REGISTRY_PASSWORD": password,
    }
    for args in (
        ("context", "demo"),
        ("build", "demo", "--platform", "linux/amd64", "--rebuild"),
        ("release", "demo", "--registry", target),  # smoke skipped: same image IDs
        ("profiles", "--registry", target, "--digest"),
    ):
        proc = scistacks(project, *args, env=env)
        assert proc.returncode == 0, (args, proc.stderr)
        outputs.append(proc.stdout + proc.stderr)
    record = json.loads((project / "build" / "publish" / "demo.json").read_text())
    assert record["repository"] == f"{target}/demo"

    secrets = (password.encode(), encoded.encode())

    def assert_clean(data: bytes, where: str) -> None:
        for secret in secrets:
            assert secret not in data, f"credentials leaked into {where}"

    for text in outputs:
        assert_clean(text.encode(), "command output")
    for path in project.rglob("*"):  # contexts, locks, records, smoke reports, profiles
        if path.is_file():
            assert_clean(path.read_bytes(), str(path.relative_to(project)))
    images = json.loads((project / "build" / "images" / "demo.json").read_text())["platforms"]
    for entry in images.values():
        inspect = subprocess.run(
            ["docker", "image", "inspect", entry["ref"]], capture_output=True, check=True
        )
        assert_clean(inspect.stdout, f"the config of {entry['ref']}")  # env, labels, history
        saved = subprocess.run(["docker", "save", entry["ref"]], capture_output=True, check=True)
        assert_clean(saved.stdout, f"the layers of {entry['ref']}")
    for path in (private_registry.state_dir / "data").rglob("*"):  # what was pushed
        if path.is_file():
            assert_clean(path.read_bytes(), "the registry's blobs")
    assert_clean(private_registry.log_file.read_bytes(), "the registry log")


# -- a registry that answers 500 on manifest-list PUTs ----------------------------------------

_MANIFEST_PUT = re.compile(r"/v2/.+/manifests/[^/?]+")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class _FaultProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to ``upstream`` and every answer back, bodies streamed both
    ways (docker's chunked PATCH uploads too), ``Location`` rewritten to come back here;
    while ``failing`` is set, a PUT of a manifest list (by its Content-Type) answers 500."""

    daemon_threads = True

    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _FaultHandler)
        self.upstream = upstream
        self.address = f"127.0.0.1:{self.server_address[1]}"
        self.failing = threading.Event()
        self.refused: list[str] = []  # paths answered 500
        self.manifests: list[tuple[str, str]] = []  # (path, media type) forwarded


class _FaultHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as docker speaks
    server: _FaultProxy

    def log_message(self, format, *args):  # quiet
        pass

    def _body(self):
        """The request body as an iterator of chunks (None: there is none)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():

            def chunks():
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return
                    yield self.rfile.read(size)
                    self.rfile.readline()

            return chunks()
        left = int(self.headers.get("Content-Length") or 0)
        if not left:
            return None

        def fixed():
            nonlocal left
            while left:
                data = self.rfile.read(min(left, 1 << 16))
                if not data:
                    return
                left -= len(data)
                yield data

        return fixed()

    def _relay(self):
        body = self._body()
        media = self.headers.get("Content-Type", "").split(";")[0].strip()
        if self.command == "PUT" and _MANIFEST_PUT.fullmatch(self.path.split("?")[0]):
            if self.server.failing.is_set() and media in (OCI_INDEX, DOCKER_LIST):
                for _ in body or ():  # drained, so the connection stays usable
                    pass
                self.server.refused.append(self.path)
                error = {"errors": [{"code": "UNKNOWN", "message": "injected fault"}]}
                self._answer(500, json.dumps(error).encode())
                return
            self.server.manifests.append((self.path, media))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=120)
        try:
            upstream.request(self.command, self.path, body, headers, encode_chunked=chunked)
            resp = upstream.getresponse()
            self.send_response(resp.status, resp.reason)
            length = resp.getheader("Content-Length")
            for key, value in resp.getheaders():
                if key.lower() in _HOP_BY_HOP or key.lower() == "content-length":
                    continue
                if key.lower() == "location":
                    value = value.replace(f"//{self.server.upstream}/", f"//{self.server.address}/")
                self.send_header(key, value)
            no_body = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
            if length is not None:
                self.send_header("Content-Length", length)
            elif not no_body:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if no_body:
                return
            while data := resp.read1(1 << 16):
                self.wfile.write(
                    data if length is not None else b"%x\r\n%s\r\n" % (len(data), data)
                )
            if length is None:
                self.wfile.write(b"0\r\n\r\n")
        finally:
            upstream.close()

    def _answer(self, status: int, data: bytes):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _relay


@contextmanager
def _fault_proxy(upstream: str, lifetime: float = 1500):
    """The proxy, serving in a thread; it stops by itself after ``lifetime`` seconds."""
    proxy = _FaultProxy(upstream)
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.2})
    thread.daemon = True
    thread.start()
    timer = threading.Timer(lifetime, proxy.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield proxy
    finally:
        timer.cancel()
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=10)


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_registry_answering_500_on_the_manifest_list_put_moves_no_tag_and_a_rerun_completes(
    smoked, private_registry, tmp_path
):
    project = _copy(smoked, tmp_path / "demo")
    private_registry.ensure()
    direct = Registry(private_registry.address)  # asked behind the proxy's back
    earlier = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
    for tag in ("2025.01.01", "latest"):
        direct.put_manifest("faults/demo", tag, earlier, OCI_INDEX)
    before = direct.manifest("faults/demo", "latest")[2]

    with _fault_proxy(private_registry.address) as proxy:
        target = f"{proxy.address}/faults"
        proxy.failing.set()
        failed = scistacks(project, "publish", "demo", "--registry", target)

        assert failed.returncode == 1, failed.stdout + failed.stderr
        line = _one_line(_errors_only(failed.stderr))
        assert line.startswith("error: ") and proxy.address in line, line
        assert proxy.refused, "no manifest list was PUT"
        pushed = [path for path, media in proxy.manifests if media not in (OCI_INDEX, DOCKER_LIST)]
        assert len(pushed) >= 2, proxy.manifests  # the platform images went through
        assert not (project / "build" / "publish" / "demo.json").exists()
        assert direct.manifest("faults/demo", "latest")[2] == before  # latest did not move
        new_tags = set(direct.tags("faults/demo")) - {"2025.01.01", "latest"}
        assert new_tags and all(t.endswith(("-amd64", "-arm64")) for t in new_tags), new_tags

        proxy.failing.clear()
        rerun = scistacks(project, "publish", "demo", "--registry", target)
        assert rerun.returncode == 0, rerun.stderr

    record = json.loads((project / "build" / "publish" / "demo.json").read_text())
    assert record["repository"] == f"{target}/demo"
    assert direct.manifest("faults/demo", "latest")[2] == record["digest"] != before
    assert set(record["platforms"]) == {"linux/amd64", "linux/arm64"}
