"""A registry on 127.0.0.1 for `scistacks release` without ``--registry``.

So that the main job runs on any machine with docker: reuse whatever answers on the
address, else start Debian's ``docker-registry`` (packaged, works offline) as a detached
process keeping its storage under ``$XDG_STATE_HOME/scistacks/registry``, else run the
``registry:2`` image (needs Docker Hub once).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from builder import docker
from builder.errors import PublishError
from builder.fsutil import write_atomic

DEFAULT_ADDRESS = "127.0.0.1:5000"
CONTAINER = "scistacks-registry"
IMAGE = "registry:2"


def default_state_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "scistacks" / "registry"


@dataclass
class LocalRegistry:
    address: str = DEFAULT_ADDRESS
    state_dir: Path = field(default_factory=default_state_dir)
    htpasswd: Path | None = None  # basic auth (bcrypt entries), as private registries have

    @property
    def url(self) -> str:
        return f"http://{self.address}/v2/"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "registry.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "registry.log"

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=2):
                return True
        except urllib.error.HTTPError as exc:
            return exc.code == 401  # there, wanting credentials
        except (urllib.error.URLError, OSError):
            return False

    def ensure(self, echo=lambda _: None) -> str:
        """Reuse or start; returns how the registry came to answer."""
        if self.answers():
            return "reused"
        if shutil.which("docker-registry"):
            pid = self._start_binary()
            how = f"started docker-registry (pid {pid}, storage {self.state_dir / 'data'})"
        else:
            self._start_container()
            how = f"started the {IMAGE} image as container {CONTAINER}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.answers():
                echo(f"registry on {self.address}: {how}")
                return how
            time.sleep(0.2)
        raise PublishError(
            f"the registry started on {self.address} does not answer after 30s "
            f"(see {self.log_file})"
        )

    # -- Debian's docker-registry ------------------------------------------------------
    def config(self) -> str:
        auth = (
            f"auth:\n  htpasswd:\n    realm: scistacks\n    path: {self.htpasswd}\n"
            if self.htpasswd
            else ""
        )
        return (
            "# written by scistacks: a local registry for releases\n"
            "version: 0.1\n"
            "log:\n  level: info\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.state_dir / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n"
            f"{auth}"
        )

    def _start_binary(self) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        conf = self.state_dir / "config.yml"
        write_atomic(conf, self.config())
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # outlives this command, like a service
            )
        write_atomic(self.pid_file, f"{proc.pid}\n")
        return proc.pid

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the docker-registry this state dir started (SIGKILL: a crash)."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, sig)
        for _ in range(100):
            with contextlib.suppress(ChildProcessError):  # reap it when it is our child
                os.waitpid(pid, os.WNOHANG)
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)

    # -- the registry image ------------------------------------------------------------
    def _start_container(self) -> None:
        if not docker.available():
            raise PublishError(
                f"no registry on {self.address}, and neither docker-registry nor docker "
                "is installed (pass --registry)"
            )
        if docker.call(["start", CONTAINER], error=PublishError).returncode == 0:
            return
        proc = docker.call(
            [
                "run", "-d", "--name", CONTAINER, "--restart", "unless-stopped",
                "-p", f"{self.address}:5000", "-v", f"{CONTAINER}:/var/lib/registry", IMAGE,
            ],
            error=PublishError,
            timeout=None,
        )  # fmt: skip
        if proc.returncode != 0:
            tail = docker.reason(proc)
            raise PublishError(
                f"no registry on {self.address}, no docker-registry on PATH, and the "
                f"{IMAGE} image does not run: {tail} (install docker-registry or pass --registry)"
            )
