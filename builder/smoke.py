"""Stage 5: smoke. Runs a distribution's sample notebooks, imports and hub checks inside its
built images, one platform per image, and writes ``build/smoke/NAME/``:

- ``junit.xml``: one testcase per platform and check, for CI;
- ``summary.md``: per platform, per notebook, pass or fail and duration; for a failure the
  failing cell's source and the end of its traceback;
- ``results.json``: per platform pass/fail, durations, image and lock hash (``publish``
  refuses images that are not recorded here as passed);
- ``outputs/PLATFORM/...``: the executed notebooks and the logs of every run.

Every check runs in a container of its own (``docker run --rm``, ``--network none`` unless
a notebook opts in, the image's entrypoint so ``start`` runs first), so checks run in
parallel and a hanging one is killed without touching the others. Notebooks execute in the
image's own Jupyter (``jupyter nbconvert --execute``) with the kernel their metadata names.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import math
import os
import platform as host
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from builder.errors import ScistacksError, SmokeError
from builder.fsutil import write_atomic
from builder.image import docker
from builder.project import OCI_PLATFORMS, Project, conda_platform, oci_platform
from builder.spec.layering import Distribution, NotebookRef

ENV_PREFIX = "/srv/conda/envs/notebook"  # repo2docker's NB_PYTHON_PREFIX, the default
NOTEBOOKS_MOUNT = "/srv/smoke/notebooks"
OUTPUTS_MOUNT = "/srv/smoke/outputs"
RUN_LABEL = "io.scistacks.smoke-run"  # every container of a run carries it, for clean-up

PROBE_TIMEOUT = 300  # seconds; python and jupyter start slowly under qemu
IMPORTS_TIMEOUT = 600
HUB_SERVER_TIMEOUT = 120  # the server must answer within this
HUB_TIMEOUT = HUB_SERVER_TIMEOUT + 180
KILL_GRACE = 30
STARTUP_SLOT_MAX = 60  # seconds a container may hold its start-up slot
TRACEBACK_LINES = 20
HUB_USER = "jovyan"
HUB_PORT = 8888
HUB_SMOKE_MOUNT = "/tmp/scistacks-smoke/hub_smoke.py"  # builder/image/scripts/hub_smoke.py

ARCHES = {oci: oci.split("/", 1)[1] for oci in OCI_PLATFORMS.values()}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not allowed in XML 1.0


def clean(text: str) -> str:
    """Terminal colours and control characters out (tracebacks carry both)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(clean(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def last_line(text: str) -> str:
    lines = [line.strip() for line in clean(text).splitlines() if line.strip()]
    return lines[-1] if lines else ""


# ---------------------------------------------------------------- results


@dataclass
class Check:
    """One testcase: a notebook, an import or a hub check, on one platform."""

    platform: str
    kind: str  # image | notebook | import | imports | hub
    name: str
    status: str = "pass"  # pass | fail | skip
    duration: float = 0.0
    message: str = ""  # one line
    details: str = ""  # the failing cell's source, a traceback's end, a server log
    cell: int | None = None  # 1-based index in the notebook's cells
    cell_source: str | None = None
    output: str | None = None  # executed notebook, relative to the results folder
    log: str | None = None
    seconds: float | None = None  # import time of a module

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def to_dict(self) -> dict:
        out = {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "duration": round(self.duration, 3),
        }
        for key in ("message", "details", "cell", "cell_source", "output", "log"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        if self.seconds is not None:
            out["seconds"] = round(self.seconds, 4)
        return out


@dataclass
class Target:
    """The image tested for one platform, or why there is none."""

    platform: str  # conda subdir
    oci_platform: str
    ref: str | None
    image_id: str | None = None
    lock_hash: str | None = None
    problem: str | None = None  # nothing can run on this platform
    entrypoint: list[str] | None = None
    jupyter: str | None = None
    nbconvert: str | None = None
    python: str | None = None
    emulated: bool = False

    @property
    def label(self) -> str:
        return f"{self.ref} ({self.oci_platform})"


@dataclass
class SmokeReport:
    distribution: str
    targets: list[Target]
    checks: list[Check]
    results_dir: Path
    duration: float
    lock_hash: str | None = None
    imports: dict[str, dict] = field(default_factory=dict)  # platform -> python, modules
    # seconds from the start of the run until the platform's last check ended
    wall: dict[str, float] = field(default_factory=dict)

    def platform_checks(self, platform: str) -> list[Check]:
        return [c for c in self.checks if c.platform == platform]

    def platform_passed(self, platform: str) -> bool:
        checks = self.platform_checks(platform)
        return bool(checks) and not any(c.failed for c in checks)

    @property
    def passed(self) -> bool:
        return bool(self.targets) and all(self.platform_passed(t.platform) for t in self.targets)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]


# ---------------------------------------------------------------- which images


def _host_arch() -> str:
    machine = host.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def _inspect(ref: str) -> dict | None:
    proc = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, timeout=60)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout or b"[]")
    return data[0] if data else None


def _describe(target: Target, image: dict) -> None:
    from builder.image.labels import LOCK_HASH, PLATFORM_LOCK_HASH

    config = image.get("Config") or {}
    target.image_id = image.get("Id")
    target.entrypoint = config.get("Entrypoint") or None
    labels = config.get("Labels") or {}
    if target.lock_hash is None:
        target.lock_hash = labels.get(PLATFORM_LOCK_HASH) or labels.get(LOCK_HASH)
    arch = image.get("Architecture")
    if arch != ARCHES.get(target.oci_platform):
        target.problem = f"image {target.ref} is linux/{arch}, not {target.oci_platform}"
    target.emulated = arch != _host_arch()


def _split(values: Iterable[str] | None) -> list[str]:
    return [v.strip() for value in values or () for v in str(value).split(",") if v.strip()]


def resolve_targets(
    project: Project,
    dist: Distribution,
    platforms: Iterable[str] | None = None,
    images: Sequence[str] = (),
) -> tuple[list[Target], str | None]:
    """The image for each platform to test: ``build/images/NAME.json``, or ``--image``.

    A platform whose image is missing gets a ``problem`` (reported as failed); the others
    still run. Returns the targets and the distribution's lock hash from the record."""
    wanted: list[str] = []
    for value in _split(platforms):
        plat = conda_platform(value)
        oci_platform(plat)  # only platforms with container images
        if plat not in wanted:
            wanted.append(plat)
    images = list(images)

    if images:
        if not wanted:
            targets = []
            for ref in images:
                image = _inspect(ref)
                if image is None:
                    raise SmokeError(
                        f"image {ref} not found locally; pass --platform to report it as "
                        "a failed platform",
                        field="--image",
                    )
                oci = f"linux/{image.get('Architecture')}"
                if oci not in ARCHES:
                    raise SmokeError(
                        f"image {ref} is {oci}: no such image platform", field="--image"
                    )
                targets.append(Target(conda_platform(oci), oci, ref))
        elif len(images) == len(wanted):
            targets = [
                Target(p, oci_platform(p), ref) for p, ref in zip(wanted, images, strict=True)
            ]
        else:
            raise SmokeError(
                f"{len(images)} --image for {len(wanted)} --platform: give one image per platform",
                field="--image",
            )
        for target in targets:
            image = _inspect(target.ref)
            if image is None:
                target.problem = f"image {target.ref} not found locally"
            else:
                _describe(target, image)
        return targets, None

    from builder.image import read_record, record_path

    linux = [p for p in dist.platforms if p in OCI_PLATFORMS]
    for plat in wanted:
        if plat not in dist.platforms:
            raise SmokeError(
                f"{dist.name} is not built for {plat} (its platforms: {', '.join(dist.platforms)})",
                field="--platform",
            )
    wanted = wanted or linux
    if not wanted:
        raise SmokeError(f"{dist.name} has no linux platform, so no image to test")
    try:
        record = read_record(project, dist.name)
    except ScistacksError as exc:
        raise SmokeError(exc.message + " (or pass --image REF)", file=exc.file) from None
    record_file = project.relative(record_path(project, dist.name))
    entries = record.get("platforms") if isinstance(record, dict) else None
    if not isinstance(entries, dict):
        raise SmokeError("no 'platforms' in the image record", file=record_file)
    targets = []
    for plat in wanted:
        entry = entries.get(plat) if isinstance(entries.get(plat), dict) else {}
        target = Target(plat, oci_platform(plat), entry.get("ref"))
        if not entry.get("ref"):
            target.problem = (
                f"no {target.oci_platform} image in {record_file} "
                f"(build it: scistacks build {dist.name} --platform {target.oci_platform})"
            )
            targets.append(target)
            continue
        target.lock_hash = entry.get("lock_hash")
        image = _inspect(entry["ref"])
        if image is None:
            target.problem = f"image {entry['ref']} of {record_file} not found locally"
        else:
            _describe(target, image)
            recorded = entry.get("image_id")
            if not target.problem and recorded and recorded != target.image_id:
                # never test one image and report another: publish trusts these results
                target.problem = (
                    f"{entry['ref']} is now {target.image_id[:19]}, not {recorded[:19]} as "
                    f"{record_file} says (rebuild: scistacks build {dist.name})"
                )
        targets.append(target)
    lock_hash = record.get("lock_hash") if isinstance(record, dict) else None
    return targets, lock_hash


# ---------------------------------------------------------------- containers


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
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            proc = subprocess.run(
                ["docker", "ps", "-aq", "--filter", f"label={RUN_LABEL}={self.run_id}"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            ids = proc.stdout.split()
            if ids:
                subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=120)

    def _kill(self, name: str) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["docker", "kill", name], capture_output=True, timeout=KILL_GRACE)

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
            "docker",
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
                proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
                try:
                    if self.closed:  # closed while starting: the clean-up may have missed it
                        raise SmokeError("interrupted")
                    while True:
                        left = started + timeout - time.monotonic()
                        if left <= 0:
                            raise subprocess.TimeoutExpired(args, timeout)
                        try:
                            code = proc.wait(timeout=min(left, 0.25))
                            break
                        except subprocess.TimeoutExpired:
                            pass
                        if self.closed:  # its container may have escaped close()
                            raise SmokeError("interrupted")
                        # without a ``ready`` marker, the whole run counts as start-up
                        if slot[0] and (
                            (watch is not None and watch.seen())
                            or time.monotonic() - started > STARTUP_SLOT_MAX
                        ):
                            release()
                except subprocess.TimeoutExpired:
                    timed_out = True
                    self._kill(name)
                    try:
                        code = proc.wait(timeout=KILL_GRACE)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        code = proc.wait()
                except BaseException:  # interrupted: the container must not outlive us
                    self._kill(name)
                    proc.kill()
                    proc.wait()
                    with contextlib.suppress(OSError, subprocess.SubprocessError):
                        subprocess.run(
                            ["docker", "rm", "-f", name], capture_output=True, timeout=60
                        )
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


# ---------------------------------------------------------------- probe: what the image has

PROBE_SCRIPT = """\
echo "@@probe uid=$(id -u)"
if j=$(command -v jupyter 2>/dev/null); then
    echo "@@probe jupyter=$j"
    if v=$(jupyter nbconvert --version 2>/dev/null); then echo "@@probe nbconvert=$v"; fi
fi
if p=$(command -v python 2>/dev/null || command -v python3 2>/dev/null); then
    echo "@@probe python=$p"
fi
echo "@@probe done=1"
"""


def probe(containers: Containers, target: Target) -> Check:
    """One container per image: does it run at all, and where are jupyter and python?"""
    outcome = containers.run(
        target,
        ["sh", "-c", PROBE_SCRIPT],
        timeout=PROBE_TIMEOUT,
        logs=containers.work / target.platform / "probe",
    )
    facts = dict(
        line[len("@@probe ") :].partition("=")[::2]
        for line in outcome.out().splitlines()
        if line.startswith("@@probe ")
    )
    check = Check(target.platform, "image", "image", duration=outcome.seconds)
    if outcome.timed_out:
        target.problem = f"image {target.label} did not run `sh -c ...` within {PROBE_TIMEOUT} s"
    elif outcome.returncode != 0 or "done" not in facts:
        reason = (
            last_line(outcome.err()) or last_line(outcome.out()) or f"exit {outcome.returncode}"
        )
        target.problem = f"image {target.label} cannot run a command: {reason}"
    if target.problem:
        check.status, check.message = "fail", target.problem
        return check
    target.jupyter = facts.get("jupyter") or None
    target.nbconvert = facts.get("nbconvert") or None
    target.python = facts.get("python") or None
    check.message = ", ".join(
        [
            f"{target.ref} {(target.image_id or '')[:19]}",
            f"uid {facts.get('uid', '?')}",
            f"jupyter nbconvert {target.nbconvert}" if target.nbconvert else "no jupyter nbconvert",
            f"python {target.python}" if target.python else "no python",
        ]
    )
    return check


# ---------------------------------------------------------------- notebooks


@dataclass(frozen=True)
class NotebookJob:
    notebook: NotebookRef
    path: Path  # on the host
    output: str  # relative to outputs/PLATFORM/, without .ipynb


def _code_cells(path: Path) -> list[tuple[int, str]]:
    """(1-based cell number, source) of each cell nbclient executes, in order."""
    import nbformat  # a second to import (jsonschema): only when there are notebooks

    nb = nbformat.read(path, as_version=4)
    return [
        (i + 1, cell.source)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and cell.source.strip()
    ]


_EXECUTING = "[NbConvertApp] Executing cell:"
_CELL_ERROR = "An error occurred while executing the following cell:"
_CELL_TIMEOUT = "A cell timed out while it was being executed"


def explain_failure(
    stderr: str, cells: list[tuple[int, str]]
) -> tuple[int | None, str | None, str, str]:
    """From nbconvert's (debug) log: the cell that ran last, its source, one line, details.

    nbclient logs each cell as it starts ("Executing cell:"), so the last one is the cell
    that raised, timed out or was running when the notebook was killed."""
    text = clean(stderr)
    started = text.count(_EXECUTING)
    cell = source = None
    if 0 < started <= len(cells):
        cell, source = cells[started - 1]
    if _CELL_ERROR in text:
        tail = text.rsplit(_CELL_ERROR, 1)[1]
        parts = re.split(r"^-{10,}$", tail, maxsplit=2, flags=re.M)
        if len(parts) == 3:
            if source is None:
                source = parts[1].strip("\n")
            tb_lines = [line.rstrip() for line in parts[2].strip("\n").splitlines()]
            tb_lines = [line for line in tb_lines if line.strip()]
            details = "\n".join(tb_lines[-TRACEBACK_LINES:])
            return cell, source, last_line(parts[2]) or "the cell raised", details
    if _CELL_TIMEOUT in text:
        line = text.rsplit(_CELL_TIMEOUT, 1)[1].splitlines()[0]
        return cell, source, f"cell timed out{line.rstrip('.')} (cell_timeout)", ""
    kernel = re.search(r"No such kernel named (\S+)", text)
    if kernel:
        message = f"the notebook's kernel {kernel.group(1)!r} is not installed in the image"
        return None, None, message, ""
    lines = [line for line in text.splitlines() if line.strip()]
    return cell, source, last_line(text) or "nbconvert failed", "\n".join(lines[-TRACEBACK_LINES:])


def run_notebook(
    containers: Containers, target: Target, job: NotebookJob, index: int, outputs: Path
) -> Check:
    nb = job.notebook
    check = Check(target.platform, "notebook", nb.path)
    try:
        cells = _code_cells(job.path)
    except Exception as exc:
        check.status, check.message = "fail", f"not a readable notebook: {one_line(str(exc))}"
        return check
    if not target.jupyter:
        check.status = "fail"
        check.message = f"jupyter not found in image {target.label}: cannot run {nb.path}"
        return check
    if not target.nbconvert:
        check.status = "fail"
        check.message = (
            f"`jupyter nbconvert` does not work in image {target.label}: cannot run {nb.path}"
        )
        return check
    # a folder of its own per run: the container (uid 1000, or whatever the image says)
    # writes there, the notebooks' folder stays read-only
    scratch = containers.work / target.platform / f"nb-{index}"
    scratch.mkdir(parents=True, exist_ok=True)
    scratch.chmod(0o777)
    stem = Path(nb.path).stem
    # a symlinked notebook runs from its real folder, beside the files it reads
    source = job.path.resolve()
    command = [
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--log-level=DEBUG",  # "Executing cell:" names the cell that failed or hung
        f"--ExecutePreprocessor.timeout={nb.cell_timeout}",
        f"--ExecutePreprocessor.startup_timeout={max(60, min(nb.cell_timeout, nb.timeout))}",
        "--output-dir",
        OUTPUTS_MOUNT,
        "--output",
        stem,
        f"{NOTEBOOKS_MOUNT}/{source.name}",
    ]
    outcome = containers.run(
        target,
        command,
        timeout=nb.timeout,
        logs=containers.work / target.platform / f"nb-{index}.log",
        mounts=[
            (source.parent, NOTEBOOKS_MOUNT, True),
            (scratch.resolve(), OUTPUTS_MOUNT, False),
        ],
        network=nb.network,
        ready=_EXECUTING.encode(),  # the kernel is up: the start-up's CPU burst is over
    )
    check.duration = outcome.seconds
    dest = outputs / target.platform / job.output
    dest.parent.mkdir(parents=True, exist_ok=True)
    log = dest.parent / f"{dest.name}.log"  # not with_suffix: stems may hold dots
    shutil.copyfile(outcome.stderr, log)
    check.log = str(log.relative_to(outputs.parent))
    executed = scratch / f"{stem}.ipynb"
    if executed.is_file():
        os.replace(executed, dest.parent / f"{dest.name}.ipynb")
        check.output = str((dest.parent / f"{dest.name}.ipynb").relative_to(outputs.parent))
    if outcome.returncode == 0 and not outcome.timed_out and check.output:
        return check
    check.status = "fail"
    stderr = outcome.err()
    check.cell, check.cell_source, message, check.details = explain_failure(stderr, cells)
    if outcome.timed_out:
        running = (
            f", killed while running cell {check.cell}"
            if check.cell
            else ", killed before its first cell ran"
        )
        message = f"notebook timed out after {nb.timeout} s (timeout){running}"
        check.details = ""
    elif outcome.returncode == 0:
        message = "nbconvert exited 0 but wrote no executed notebook"
    where = f"cell {check.cell}: " if check.cell and not outcome.timed_out else ""
    check.message = one_line(f"{where}{message}")
    return check


# ---------------------------------------------------------------- imports

IMPORTS_SCRIPT = """\
import importlib, json, sys, time, traceback
results = []
for name in json.loads(sys.argv[1]):
    print("@@importing " + name, flush=True)
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(name)
    except BaseException as exc:
        line = traceback.format_exception_only(type(exc), exc)[-1].strip()
        results.append({"module": name, "ok": False, "seconds": time.perf_counter() - t0, "error": line})
    else:
        version = getattr(module, "__version__", None)
        results.append({"module": name, "ok": True, "seconds": time.perf_counter() - t0,
                        "version": version if isinstance(version, str) else None})
print("@@imports " + json.dumps({"python": sys.executable, "version": sys.version.split()[0],
                                  "results": results}), flush=True)
"""


def run_imports(
    containers: Containers, target: Target, modules: Sequence[str]
) -> tuple[list[Check], dict]:
    """Every module in ONE python process, timed one by one (later modules find the
    dependencies they share with earlier ones already imported: that is how users meet
    them too)."""
    if not target.python:
        check = Check(target.platform, "imports", "imports", status="fail")
        check.message = f"no python on PATH in image {target.label}"
        return [check], {}
    outcome = containers.run(
        target,
        [
            "sh",
            "-c",
            'exec "$(command -v python || command -v python3)" -c "$0" "$1"',
            IMPORTS_SCRIPT,
            json.dumps(list(modules)),
        ],
        timeout=IMPORTS_TIMEOUT,
        logs=containers.work / target.platform / "imports",
    )
    out = outcome.out()
    report = None
    for line in out.splitlines():
        if line.startswith("@@imports "):
            report = json.loads(line[len("@@imports ") :])
    if report is None:
        started = [
            line[len("@@importing ") :]
            for line in out.splitlines()
            if line.startswith("@@importing ")
        ]
        module = f" while importing {started[-1]}" if started else ""
        if outcome.timed_out:
            reason = f"timed out after {IMPORTS_TIMEOUT} s{module}"
        else:
            reason = f"python exited {outcome.returncode}{module}: {last_line(outcome.err()) or 'no output'}"
        check = Check(
            target.platform, "imports", "imports", status="fail", duration=outcome.seconds
        )
        check.message = one_line(reason)
        check.details = "\n".join(clean(outcome.err()).splitlines()[-TRACEBACK_LINES:])
        return [check], {}
    checks = []
    for item in report["results"]:
        check = Check(
            target.platform,
            "import",
            item["module"],
            duration=item["seconds"],
            seconds=item["seconds"],
        )
        if item["ok"]:
            version = f" {item['version']}" if item.get("version") else ""
            check.message = f"{item['module']}{version} in {item['seconds']:.3f} s"
        else:
            check.status, check.message = "fail", one_line(item["error"])
        checks.append(check)
    info = {
        "container_seconds": round(outcome.seconds, 3),
        "python": report["python"],
        "python_version": report["version"],
        "modules": {
            i["module"]: {
                "ok": i["ok"],
                "seconds": round(i["seconds"], 4),
                **({"version": i["version"]} if i.get("version") else {}),
                **({"error": i["error"]} if not i["ok"] else {}),
            }
            for i in report["results"]
        },
    }
    return checks, info


# ---------------------------------------------------------------- hub compatibility

# Runs as the image's default user, through its entrypoint, as a hub's spawner runs it.
# Each check prints "@@check NAME STATUS", its message lines, "@@end". $0 is HUB_PROBE.
HUB_SCRIPT = """\
report() { printf '@@check %s %s %s\\n%s\\n@@end\\n' "$1" "$2" "$(date +%s.%N)" "$3"; }
echo "@@t0 $(date +%s.%N)"
prefix="${NB_PYTHON_PREFIX:-${CONDA_DIR:+$CONDA_DIR/envs/notebook}}"
prefix="${prefix:-__ENV_PREFIX__}"

start=
for candidate in "${R2D_ENTRYPOINT:-}" __NATIVE_START__; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then start=$candidate; break; fi
done
report start pass "the entrypoint ran and handed over the command${start:+ (start script: $start)}"

if v=$(jupyterhub-singleuser --version 2>&1); then
    report singleuser pass "jupyterhub-singleuser $(printf '%s\\n' "$v" | tail -n 1)"
elif command -v jupyterhub-singleuser >/dev/null 2>&1; then
    report singleuser fail "jupyterhub-singleuser --version failed: $(printf '%s\\n' "$v" | tail -n 20)"
else
    report singleuser fail "jupyterhub-singleuser not found on PATH ($PATH)"
fi

uid=$(id -u)
if [ "$uid" = 1000 ]; then
    report uid pass "uid 1000 ($(id -un 2>/dev/null))"
else
    report uid fail "the default user is uid $uid ($(id -un 2>/dev/null)), not 1000"
fi

if [ -z "${HOME:-}" ]; then
    report home fail "HOME is not set"
elif [ ! -d "$HOME" ]; then
    report home fail "HOME $HOME does not exist"
elif made=$(mktemp "$HOME/.scistacks-smoke.XXXXXX" 2>&1) && rm -f "$made"; then
    report home pass "HOME $HOME is writable"
else
    report home fail "HOME $HOME is not writable by uid $uid: $made"
fi

py=$(command -v python 2>/dev/null || command -v python3 2>/dev/null || true)
if [ -x "$prefix/bin/python" ]; then
    case "$py" in
        "$prefix/bin/"*) report python pass "python is $py" ;;
        *) report python fail "python on PATH is ${py:-missing}, not $prefix/bin/python (PATH=$PATH)" ;;
    esac
else
    report python skip "the environment $prefix has no python; python on PATH is ${py:-missing}"
fi

if command -v jupyterhub >/dev/null 2>&1 && command -v jupyterhub-singleuser >/dev/null 2>&1 \
    && py=$(command -v python3 2>/dev/null || command -v python 2>/dev/null); then
    # the image's own hub spawns its own single-user server, as a hub on Kubernetes would
    if out=$("$py" __HUB_SMOKE__ __USER__ __PORT__ __TIMEOUT__ 2>&1); then
        report server pass "${out#pass }"
    else
        report server fail "${out#fail }"
    fi
    exit 0
fi

log=$(mktemp /tmp/scistacks-server.XXXXXX)
base=/
if command -v jupyterhub-singleuser >/dev/null 2>&1; then
    how=jupyterhub-singleuser
    base=/user/__USER__/
    # what a hub's spawner passes; no hub answers at the API URL, which the server
    # tolerates for a few retries, long enough to answer here
    JUPYTERHUB_API_TOKEN=scistacks-smoke \\
    JUPYTERHUB_CLIENT_ID=jupyterhub-user-__USER__ \\
    JUPYTERHUB_API_URL=http://127.0.0.1:8081/hub/api \\
    JUPYTERHUB_BASE_URL=/ \\
    JUPYTERHUB_SERVICE_PREFIX=$base \\
    JUPYTERHUB_SERVICE_URL=http://127.0.0.1:__PORT__$base \\
    JUPYTERHUB_USER=__USER__ \\
    JUPYTERHUB_OAUTH_CALLBACK_URL=${base}oauth_callback \\
        jupyterhub-singleuser --ip=127.0.0.1 --port=__PORT__ >"$log" 2>&1 &
elif jupyter server --version >/dev/null 2>&1; then
    how="jupyter server (no jupyterhub-singleuser)"
    jupyter server --ip=127.0.0.1 --port=__PORT__ --no-browser >"$log" 2>&1 &
elif jupyter notebook --version >/dev/null 2>&1; then
    how="jupyter notebook (no jupyterhub-singleuser)"
    jupyter notebook --ip=127.0.0.1 --port=__PORT__ --no-browser >"$log" 2>&1 &
else
    report server fail "no server to start: neither jupyterhub-singleuser nor jupyter server is installed"
    exit 0
fi
pid=$!
url="http://127.0.0.1:__PORT__${base}api"
if ! py=$(command -v python3 2>/dev/null || command -v python 2>/dev/null); then
    report server fail "$how started, but there is no python to probe $url"
    exit 0
fi
if answer=$("$py" -c "$0" "$url" "$pid" __TIMEOUT__ 2>&1); then
    report server pass "$how answered $answer"
else
    report server fail "$how: $answer
$(tail -n 20 "$log")"
fi
kill "$pid" 2>/dev/null
exit 0
"""

HUB_PROBE = """\
import sys, time, urllib.error, urllib.request
url, pid, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
t0, last = time.monotonic(), "no answer"
while time.monotonic() - t0 < limit:
    try:
        with opener.open(url, timeout=5) as resp:
            body = resp.read(200).decode(errors="replace").strip()
            print(f"GET {url} -> {resp.status} {body} in {time.monotonic() - t0:.1f} s")
            sys.exit(0)
    except urllib.error.HTTPError as exc:
        print(f"GET {url} -> HTTP {exc.code} after {time.monotonic() - t0:.1f} s")
        sys.exit(1)
    except OSError as exc:
        last = str(exc)
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    if state in ("Z", "X", "gone"):
        print(f"the server exited after {time.monotonic() - t0:.1f} s without answering {url} ({last})")
        sys.exit(1)
    time.sleep(0.5)
print(f"no answer from {url} within {limit:.0f} s ({last})")
sys.exit(1)
"""

HUB_CHECKS = ("start", "singleuser", "uid", "home", "python", "server")


def run_hub_checks(containers: Containers, target: Target, dist: Distribution) -> list[Check]:
    # where each engine puts `start`: repo2docker names it in $R2D_ENTRYPOINT
    from builder.image.native import START as NATIVE_START

    script = (
        HUB_SCRIPT.replace("__ENV_PREFIX__", ENV_PREFIX)
        .replace("__NATIVE_START__", NATIVE_START)
        .replace("__USER__", HUB_USER)
        .replace("__PORT__", str(HUB_PORT))
        .replace("__TIMEOUT__", str(HUB_SERVER_TIMEOUT))
    )
    hub_smoke = resources.files("builder.image") / "scripts" / "hub_smoke.py"
    with resources.as_file(hub_smoke) as path:
        outcome = containers.run(
            target,
            ["sh", "-c", script.replace("__HUB_SMOKE__", HUB_SMOKE_MOUNT), HUB_PROBE],
            timeout=HUB_TIMEOUT,
            logs=containers.work / target.platform / "hub",
            mounts=[(Path(path).resolve(), HUB_SMOKE_MOUNT, True)],
        )
    found: dict[str, Check] = {}
    current: Check | None = None
    lines: list[str] = []
    stamps: list[float] = []  # when the script began, then when each check ended
    for line in outcome.out().splitlines():
        if line.startswith("@@t0 "):
            stamps.append(_stamp(line.split()[1]))
        elif line.startswith("@@check "):
            _, name, status, stamp = [*line.split(), "", "", ""][:4]
            status = status if status in ("pass", "fail", "skip") else "fail"
            current, lines = Check(target.platform, "hub", name, status=status), []
            stamps.append(_stamp(stamp))
            if len(stamps) >= 2 and not any(math.isnan(x) for x in stamps[-2:]):
                current.duration = max(0.0, stamps[-1] - stamps[-2])
        elif line == "@@end" and current is not None:
            text = clean("\n".join(lines)).strip()
            current.message = one_line(text.splitlines()[0] if text else "")
            current.details = "\n".join(text.splitlines()[1:])
            found[current.name] = current
            current = None
        elif current is not None:
            lines.append(line)
    checks = []
    for name in HUB_CHECKS:
        check = found.get(name) or Check(target.platform, "hub", name, status="fail")
        if name not in found:
            if outcome.timed_out:
                check.message = f"hub checks timed out after {HUB_TIMEOUT} s before this check"
            else:
                check.message = one_line(
                    f"not reached: the container exited {outcome.returncode}: "
                    f"{last_line(outcome.err()) or 'no output'}"
                )
        checks.append(check)
    start = checks[0]
    if not dist.start:
        start.status, start.message = "skip", "the distribution has no start script"
    elif not target.entrypoint and start.status == "pass":
        start.status = "fail"
        start.message = f"the image has no entrypoint, so {', '.join(dist.start)} never runs"
    elif start.status == "pass":
        start.message = f"{' '.join(target.entrypoint)}: {start.message}"
    # the first check also carries the container's start-up (and the entrypoint's)
    start.duration += max(0.0, outcome.seconds - sum(c.duration for c in checks))
    return checks


def _stamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # a `date` without %N: no per-check times
        return float("nan")


# ---------------------------------------------------------------- the run


@dataclass
class _Task:
    target: Target
    kind: str
    name: str
    estimate: float
    run: Callable[[], list[Check]]


def _previous_durations(results_dir: Path) -> dict[tuple[str, str, str], float]:
    """Last run's durations: the longest checks start first, so the run ends sooner."""
    try:
        data = json.loads((results_dir / "results.json").read_text())
        found = {}
        for plat, entry in data["platforms"].items():
            for c in entry.get("checks", []):
                found[plat, c["kind"], c["name"]] = float(c["duration"])
            if (entry.get("imports") or {}).get("container_seconds") is not None:
                found[plat, "imports", "imports"] = float(entry["imports"]["container_seconds"])
        return found
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _notebook_output(nb: NotebookRef) -> str:
    path = Path(nb.path)
    if path.parts and path.parts[0] == "distributions":
        path = Path(*path.parts[1:])
    return str(path.with_suffix(""))


def smoke(
    project: Project,
    name: str,
    *,
    platforms: Iterable[str] | None = None,
    images: Sequence[str] = (),
    jobs: int | None = None,
    results_dir: Path | None = None,
    echo: Callable[[str], None] = lambda _: None,
) -> SmokeReport:
    """Smoke-test NAME's images; write junit.xml, summary.md, results.json and outputs/."""
    from builder.spec import Catalog

    docker.require(SmokeError, buildx=False)
    dist = Catalog.load(project).get(name)
    targets, lock_hash = resolve_targets(project, dist, platforms, images)
    results_dir = Path(results_dir or project.results_dir(name)).resolve()
    jobs = max(1, jobs or os.cpu_count() or 1)
    previous = _previous_durations(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    work = results_dir / f".run-{uuid.uuid4().hex[:8]}"  # scratch, inside: renames stay atomic
    outputs = work / "outputs"
    outputs.mkdir(parents=True)
    started = time.monotonic()
    checks: list[Check] = []
    imports: dict[str, dict] = {}
    wall: dict[str, float] = {}

    def done(new: list[Check]) -> None:
        for c in new:
            checks.append(c)
            wall[c.platform] = time.monotonic() - started
            if c.kind != "import" or c.failed:
                mark = {"pass": "ok", "fail": "FAILED", "skip": "skipped"}[c.status]
                note = f": {c.message}" if c.failed and c.message else ""
                echo(
                    f"{name} {oci_platform(c.platform)} {c.kind} {c.name}: {mark} ({c.duration:.1f}s){note}"
                )

    containers = Containers(work, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=jobs)
    restore = _terminate_as_interrupt()
    try:
        runnable = []
        for target in targets:
            if target.problem:
                failed = Check(target.platform, "image", "image", status="fail")
                failed.message = target.problem
                done([failed])
            else:
                runnable.append(target)
        for ticket in range(len(runnable)):
            containers.slots.expect(ticket)
        probes = [
            pool.submit(_in_turn, containers, ticket, probe, containers, target)
            for ticket, target in enumerate(runnable)
        ]
        for future in as_completed(probes):
            done([future.result()])
        runnable = [t for t in runnable if not t.problem]
        tasks = _plan(project, dist, runnable, containers, outputs, previous, imports)
        first = len(probes)
        for ticket in range(first, first + len(tasks)):
            containers.slots.expect(ticket)
        futures = [
            pool.submit(_in_turn, containers, first + i, task.run) for i, task in enumerate(tasks)
        ]
        for future in as_completed(futures):
            done(future.result())
    except BaseException:
        # Ctrl-C or a bug: kill the containers first, so that the threads waiting on
        # them return, then wait for the threads
        pool.shutdown(wait=False, cancel_futures=True)
        containers.close()
        pool.shutdown(wait=True)
        containers.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        restore()
    pool.shutdown()
    containers.close()

    order = {t.platform: i for i, t in enumerate(targets)}
    kinds = {"image": 0, "notebook": 1, "import": 2, "imports": 2, "hub": 3}
    nb_order = {nb.path: i for i, nb in enumerate(dist.notebooks)}
    hub_order = {n: i for i, n in enumerate(HUB_CHECKS)}
    imp_order = {m: i for i, m in enumerate(dist.imports)}
    checks.sort(
        key=lambda c: (
            order[c.platform],
            kinds[c.kind],
            nb_order.get(c.name, hub_order.get(c.name, imp_order.get(c.name, 0))),
        )
    )
    report = SmokeReport(
        name, targets, checks, results_dir, time.monotonic() - started, lock_hash, imports, wall
    )
    _publish_results(report, work, outputs)
    return report


def _in_turn(containers: Containers, ticket: int, work: Callable, *args):
    with containers.turn(ticket):
        return work(*args)


def _terminate_as_interrupt() -> Callable[[], None]:
    """SIGTERM (a CI job cancelled) cleans up like Ctrl-C; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _plan(
    project: Project,
    dist: Distribution,
    targets: list[Target],
    containers: Containers,
    outputs: Path,
    previous: dict,
    imports: dict,
) -> list[_Task]:
    tasks: list[_Task] = []
    counter = iter(range(1_000_000))
    for target in targets:
        slow = 5.0 if target.emulated else 1.0

        def estimate(kind: str, names, default: float, _t=target, _slow=slow) -> float:
            known = [previous.get((_t.platform, kind, n)) for n in names]
            return sum(known) if known and None not in known else default * _slow

        for nb in dist.notebooks:
            if nb.platforms and target.platform not in nb.platforms:
                continue
            path = project.root / nb.path
            job = NotebookJob(nb, path, _notebook_output(nb))
            if not path.is_file():
                check = Check(target.platform, "notebook", nb.path, status="fail")
                check.message = (
                    f"notebook {nb.path} does not exist "
                    f"(listed in distributions/{nb.owner}/distribution.yml)"
                )
                tasks.append(_Task(target, "notebook", nb.path, 0.0, lambda c=check: [c]))
                continue
            index = next(counter)
            tasks.append(
                _Task(
                    target,
                    "notebook",
                    nb.path,
                    estimate("notebook", [nb.path], 10.0),
                    lambda t=target, j=job, i=index: [run_notebook(containers, t, j, i, outputs)],
                )
            )
        if dist.imports:

            def imports_task(t=target) -> list[Check]:
                new, info = run_imports(containers, t, dist.imports)
                if info:
                    imports[t.platform] = info
                return new

            tasks.append(
                _Task(
                    target,
                    "imports",
                    "imports",
                    estimate("imports", ["imports"], 5.0),
                    imports_task,
                )
            )
        if dist.hub is not None:
            tasks.append(
                _Task(
                    target,
                    "hub",
                    "hub",
                    estimate("hub", HUB_CHECKS, 15.0),
                    lambda t=target: run_hub_checks(containers, t, dist),
                )
            )
    # longest first: a long notebook started last would set the wall time alone
    tasks.sort(key=lambda t: -t.estimate)
    return tasks


# ---------------------------------------------------------------- result files


def _collect_logs(work: Path, outputs: Path, targets: list[Target]) -> None:
    """Probe, imports and hub runs leave their output next to the executed notebooks."""
    for target in targets:
        for step in ("probe", "imports", "hub"):
            parts = [work / target.platform / f"{step}.{s}" for s in ("stdout", "stderr")]
            if any(p.exists() for p in parts):
                dest = outputs / target.platform / f"{step}.log"
                dest.parent.mkdir(parents=True, exist_ok=True)
                with open(dest, "wb") as fh:
                    for part in parts:
                        if part.exists():
                            fh.write(f"==> {part.suffix[1:]} <==\n".encode())
                            fh.write(part.read_bytes())


def _publish_results(report: SmokeReport, work: Path, outputs: Path) -> None:
    """outputs/ swapped in whole, then junit.xml, summary.md and results.json (last: it
    is what publish reads), each written atomically."""
    results_dir = report.results_dir
    try:
        _collect_logs(work, outputs, report.targets)
        final = results_dir / "outputs"
        if final.exists():
            os.replace(final, work / "previous-outputs")
        os.replace(outputs, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_atomic(results_dir / "junit.xml", junit_xml(report))
    write_atomic(results_dir / "summary.md", summary_markdown(report))
    write_atomic(results_dir / "results.json", json.dumps(results_json(report), indent=2) + "\n")


def _testcase_name(check: Check) -> str:
    return "image" if check.kind == "image" else f"{check.kind}: {check.name}"


def junit_xml(report: SmokeReport) -> str:
    suites = ET.Element("testsuites", name=f"scistacks smoke {report.distribution}")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for target in report.targets:
        checks = report.platform_checks(target.platform)
        counts = {
            "tests": len(checks),
            "failures": sum(c.failed for c in checks),
            "skipped": sum(c.status == "skip" for c in checks),
        }
        for key, value in counts.items():
            totals[key] += value
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{report.distribution} {target.oci_platform}",
            errors="0",
            time=f"{sum(c.duration for c in checks):.3f}",
            **{k: str(v) for k, v in counts.items()},
        )
        props = ET.SubElement(suite, "properties")
        for key, value in (
            ("platform", target.platform),
            ("image", target.ref),
            ("image_id", target.image_id),
            ("lock_hash", target.lock_hash),
        ):
            if value:
                ET.SubElement(props, "property", name=key, value=clean(value))
        for check in checks:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"smoke.{report.distribution}.{target.platform}",
                name=clean(_testcase_name(check)),
                time=f"{check.duration:.3f}",
            )
            if check.failed:
                failure = ET.SubElement(
                    case, "failure", message=clean(check.message), type=check.kind
                )
                failure.text = clean(_failure_text(check))
            elif check.status == "skip":
                ET.SubElement(case, "skipped", message=clean(check.message))
            elif check.message:
                ET.SubElement(case, "system-out").text = clean(check.message)
    for key, value in totals.items():
        suites.set(key, str(value))
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def _failure_text(check: Check) -> str:
    parts = [check.message]
    if check.cell_source is not None:
        parts.append(f"--- cell {check.cell} ---\n{check.cell_source}")
    if check.details:
        parts.append(
            f"--- traceback (end) ---\n{check.details}"
            if check.kind == "notebook"
            else check.details
        )
    if check.log:
        parts.append(f"log: {check.log}")
    return "\n\n".join(parts)


def _fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(report: SmokeReport) -> str:
    failures = report.failures
    verdict = (
        "passed" if report.passed else f"FAILED ({len(failures)} of {len(report.checks)} checks)"
    )
    lines = [
        f"# Smoke tests: {report.distribution}",
        "",
        f"**{verdict}** in {report.duration:.1f} s",
        "",
    ]
    marks = {"pass": "pass", "fail": "**FAIL**", "skip": "skip"}
    for target in report.targets:
        checks = report.platform_checks(target.platform)
        state = "passed" if report.platform_passed(target.platform) else "FAILED"
        lines += [f"## {target.oci_platform}: {state}", ""]
        image = f"`{target.ref}`" if target.ref else "no image"
        if target.image_id:
            image += f" (`{target.image_id[:19]}`)"
        if target.lock_hash:
            image += f", lock `{target.lock_hash[:12]}`"
        wall = report.wall.get(target.platform)
        lines += [f"Image {image}." + (f" Done after {wall:.1f} s." if wall else ""), ""]
        lines += ["| check | result | duration | note |", "|---|---|---|---|"]
        for c in checks:
            if c.kind == "import":
                continue  # a table of their own below
            note = c.message
            if c.output and not c.failed:
                note = f"[executed]({c.output})"
            lines.append(
                f"| {_cell(_testcase_name(c))} | {marks[c.status]} | {c.duration:.1f} s | {_cell(note)} |"
            )
        modules = [c for c in checks if c.kind == "import"]
        if modules:
            info = report.imports.get(target.platform, {})
            lines += [
                "",
                f"Imports ({info.get('python', 'python')} {info.get('python_version', '')}".rstrip()
                + ", one process, in this order):",
                "",
                "| module | result | import time |",
                "|---|---|---|",
            ]
            for c in modules:
                note = f"{c.seconds:.3f} s" if c.seconds is not None else ""
                if c.failed:
                    note += f" {c.message}"
                lines.append(f"| `{c.name}` | {marks[c.status]} | {_cell(note)} |")
        lines.append("")
    if failures:
        lines += ["## Failures", ""]
        for c in failures:
            where = f", cell {c.cell}" if c.cell else ""
            lines += [
                f"### {oci_platform(c.platform)} {_testcase_name(c)}{where}",
                "",
                c.message,
                "",
            ]
            if c.cell_source is not None:
                lines += [_fence(c.cell_source, "python"), ""]
            if c.details:
                lines += [_fence(c.details), ""]
            if c.log:
                lines += [f"Log: [{c.log}]({c.log})", ""]
    return "\n".join(lines).rstrip() + "\n"


def results_json(report: SmokeReport) -> dict:
    platforms = {}
    for target in report.targets:
        checks = report.platform_checks(target.platform)
        platforms[target.platform] = {
            "oci_platform": target.oci_platform,
            "passed": report.platform_passed(target.platform),
            "ref": target.ref,
            "image_id": target.image_id,
            "lock_hash": target.lock_hash,
            "problem": target.problem,
            "duration": round(report.wall.get(target.platform, 0.0), 3),
            "container_seconds": round(sum(c.duration for c in checks if c.kind != "import"), 3),
            "failed": [_testcase_name(c) for c in checks if c.failed],
            "notebooks": {
                c.name: {"passed": not c.failed, "duration": round(c.duration, 3)}
                for c in checks
                if c.kind == "notebook"
            },
            "imports": report.imports.get(target.platform),
            "checks": [c.to_dict() for c in checks],
        }
    return {
        "distribution": report.distribution,
        "passed": report.passed,
        "lock_hash": report.lock_hash,
        "duration": round(report.duration, 3),
        "platforms": platforms,
    }


# ---------------------------------------------------------------- results from other machines


def merge_results(project: Project, name: str, others: Iterable[Path]) -> dict:
    """Join smoke results written on other machines (one CI runner per platform) into
    ``build/smoke/NAME/``: results.json per platform, summary.md and junit.xml joined."""
    results_dir = project.results_dir(name)
    dirs = ([results_dir] if (results_dir / "results.json").is_file() else []) + [
        Path(d) for d in others
    ]
    merged: dict | None = None
    summaries: list[str] = []
    suites: list[ET.Element] = []
    for d in dirs:
        shown = project.relative(d / "results.json")
        try:
            data = json.loads((d / "results.json").read_text())
            platforms = dict(data["platforms"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise SmokeError("not smoke results (results.json)", file=shown) from None
        if merged is None:
            merged = {**data, "platforms": {}}
        elif data.get("lock_hash") != merged.get("lock_hash"):
            raise SmokeError("results of another lock", file=shown, field="lock_hash")
        merged["platforms"].update(platforms)
        merged["duration"] = max(merged.get("duration") or 0, data.get("duration") or 0)
        summary = (d / "summary.md").read_text() if (d / "summary.md").is_file() else ""
        summaries.append(summary[summary.find("\n## ") + 1 :] if "\n## " in summary else "")
        # results.json is what publish reads; a missing or broken report is not fatal
        with contextlib.suppress(OSError, ET.ParseError):
            suites += list(ET.parse(d / "junit.xml").getroot())
    if merged is None:
        raise SmokeError(f"no smoke results to merge for {name}")
    merged["passed"] = all(e.get("passed") for e in merged["platforms"].values())
    verdict = "passed" if merged["passed"] else "FAILED"
    header = f"# Smoke tests: {name}\n\n**{verdict}** on {len(merged['platforms'])} platforms\n\n"
    root = ET.Element("testsuites", name=f"scistacks smoke {name}")
    for suite in {s.get("name"): s for s in suites}.values():  # a platform's latest run
        root.append(suite)
    write_atomic(results_dir / "junit.xml", ET.tostring(root, encoding="unicode") + "\n")
    write_atomic(results_dir / "summary.md", header + "".join(summaries))
    write_atomic(results_dir / "results.json", json.dumps(merged, indent=2) + "\n")
    return merged
