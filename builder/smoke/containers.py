"""The containers of one smoke run: ``docker run`` with a kill timer, every container
labelled with the run's id for clean-up, and a scheduler of start-up slots (``_Slots``) so
that CPU-bound start-ups do not slow down the checks already running. The scripts checks
run inside images are files in ``scripts/``, read here."""

from __future__ import annotations

import contextlib
import heapq
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from builder import docker
from builder.errors import SmokeError
from builder.smoke.results import Target

RUN_LABEL = "io.scistacks.smoke-run"  # every container of a run carries it, for clean-up
KILL_GRACE = 30
STARTUP_SLOT_MAX = 60  # seconds a container may hold its start-up slot
SCRIPTS = resources.files("builder.smoke") / "scripts"


def script(name: str) -> str:
    """A script that runs inside images, shipped in ``builder/smoke/scripts/``."""
    return (SCRIPTS / name).read_text()


@dataclass
class Outcome:
    returncode: int | None
    timed_out: bool
    seconds: float
    stdout: Path
    stderr: Path

    def out(self) -> str:
        return self.stdout.read_text(errors="replace") if self.stdout.exists() else ""

    def err(self) -> str:
        return self.stderr.read_text(errors="replace") if self.stderr.exists() else ""


class _Slots:
    """At most ``n`` holders at once, granted in order of priority (lower first) among
    every ticket still expected, so a long task queued first is never overtaken by a short
    one whose thread happened to get there sooner."""

    def __init__(self, n: int):
        self.free = max(1, n)
        self.expected: list[int] = []  # a heap of tickets not yet granted
        self.cond = threading.Condition()
        self.closed = False

    def close(self) -> None:
        """Grant nothing more (cancelled tasks never give up their tickets)."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def expect(self, ticket: int) -> None:
        with self.cond:
            heapq.heappush(self.expected, ticket)

    def acquire(self, ticket: int) -> None:
        with self.cond:
            if ticket not in self.expected:
                heapq.heappush(self.expected, ticket)
            while not (self.free and self.expected[0] == ticket):
                if self.closed:
                    raise SmokeError("interrupted")
                self.cond.wait()
            heapq.heappop(self.expected)
            self.free -= 1
            self.cond.notify_all()

    def release(self) -> None:
        with self.cond:
            self.free += 1
            self.cond.notify_all()

    def forget(self, ticket: int) -> None:
        """A task that ends without (another) container gives up its place."""
        with self.cond:
            if ticket in self.expected:
                self.expected.remove(ticket)
                heapq.heapify(self.expected)
                self.cond.notify_all()


class Containers:
    """Runs containers for one smoke run; every one carries the run's label, so that
    ``close`` can remove whatever is left of them (timeouts, interrupts).

    Start-ups are CPU-bound (a container, Python, Jupyter, a kernel), sleeping or waiting
    notebooks are not: at most ``cpus`` containers start at once, and a container keeps
    its start-up slot until its log shows it is ``ready`` (or it ends). So a notebook
    started first is not slowed by the start-ups of the ones queued behind it."""

    def __init__(self, work: Path, cpus: int):
        self.run_id = uuid.uuid4().hex[:12]
        self.work = work
        self._count = 0
        self._lock = threading.Lock()
        self.slots = _Slots(cpus)
        self._local = threading.local()
        self._tickets = iter(range(1 << 30, 1 << 62))  # for work started outside ``turn``
        self.closed = False

    @contextlib.contextmanager
    def turn(self, ticket: int):
        """Containers run inside take their start-up slot in ``ticket`` order."""
        self._local.ticket = ticket
        try:
            yield
        finally:
            self._local.ticket = None
            self.slots.forget(ticket)

    def close(self) -> None:
        """No new containers from now on; remove the ones there are."""
        self.closed = True
        self.slots.close()
        self.cleanup()

    def cleanup(self) -> None:
        found = docker.quiet(["ps", "-aq", "--filter", f"label={RUN_LABEL}={self.run_id}"])
        ids = found.stdout.split() if found else []
        if ids:
            docker.quiet(["rm", "-f", *ids], timeout=120)

    def run(
        self,
        target: Target,
        command: Sequence[str],
        *,
        timeout: float,
        logs: Path,
        mounts: Sequence[tuple[Path, str, bool]] = (),
        env: dict[str, str] | None = None,
        network: bool = False,
        ready: bytes | None = None,
    ) -> Outcome:
        """``docker run`` COMMAND through the image's entrypoint; kill it after ``timeout``
        seconds (counted from its start, not from its wait for a start-up slot)."""
        with self._lock:
            if self.closed:
                raise SmokeError("interrupted")
            self._count += 1
            name = f"scistacks-smoke-{self.run_id}-{self._count}"
        args = [
            "run",
            "--rm",
            "--pull",
            "never",
            "--name",
            name,
            "--label",
            f"{RUN_LABEL}={self.run_id}",
            "--platform",
            target.oci_platform,
        ]
        if not network:
            args += ["--network", "none"]
        for source, dest, read_only in mounts:
            args += ["-v", f"{source}:{dest}{':ro' if read_only else ''}"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        args += [target.image_id or target.ref, *command]
        logs.parent.mkdir(parents=True, exist_ok=True)
        stdout, stderr = logs.with_suffix(".stdout"), logs.with_suffix(".stderr")

        ticket = getattr(self._local, "ticket", None)
        if ticket is None:
            with self._lock:
                ticket = next(self._tickets)
        self.slots.acquire(ticket)
        slot = [True]

        def release() -> None:
            if slot[0]:
                slot[0] = False
                self.slots.release()

        watch = _LogWatch(stderr, ready) if ready else None
        started = time.monotonic()
        timed_out = False
        try:
            with open(stdout, "wb") as out, open(stderr, "wb") as err:
                if self.closed:
                    raise SmokeError("interrupted")
                container = docker.Container(args, name, out, err, error=SmokeError)
                try:
                    if self.closed:  # closed while starting: the clean-up may have missed it
                        raise SmokeError("interrupted")
                    while True:
                        left = started + timeout - time.monotonic()
                        if left <= 0:
                            timed_out = True
                            code = container.stop(KILL_GRACE)
                            break
                        code = container.wait(min(left, 0.25))
                        if code is not None:
                            break
                        if self.closed:  # its container may have escaped close()
                            raise SmokeError("interrupted")
                        # without a ``ready`` marker, the whole run counts as start-up
                        if slot[0] and (
                            (watch is not None and watch.seen())
                            or time.monotonic() - started > STARTUP_SLOT_MAX
                        ):
                            release()
                except BaseException:  # interrupted: the container must not outlive us
                    container.abort(KILL_GRACE)
                    raise
        finally:
            release()
        return Outcome(code, timed_out, time.monotonic() - started, stdout, stderr)


class _LogWatch:
    """Has ``marker`` appeared in a growing log file yet?"""

    def __init__(self, path: Path, marker: bytes):
        self.path, self.marker = path, marker
        self.offset, self.tail = 0, b""

    def seen(self) -> bool:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return False
        self.offset += len(chunk)
        text = self.tail + chunk
        self.tail = text[-len(self.marker) :]
        return self.marker in text
