"""The smoke stage's run: resolve the targets, probe each image, plan the checks (longest
first, by the last run's durations), run them on a thread pool through one
``Containers``, then write the result files (``report``). Ctrl-C and SIGTERM remove every
container of the run."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from builder import docker
from builder.errors import RecordError, SmokeError
from builder.project import SMOKE_RESULTS, Project, oci_platform
from builder.records import SmokeResults
from builder.smoke.containers import Containers
from builder.smoke.hub import HUB_CHECKS, run_hub_checks
from builder.smoke.imports import run_imports
from builder.smoke.notebooks import NotebookJob, run_notebook
from builder.smoke.probe import probe
from builder.smoke.report import publish_results
from builder.smoke.results import Check, SmokeReport, Target
from builder.smoke.targets import resolve_targets
from builder.spec.layering import Distribution, NotebookRef


@dataclass
class _Task:
    target: Target
    kind: str
    name: str
    estimate: float
    run: Callable[[], list[Check]]


def _previous_durations(
    project: Project, name: str, results_dir: Path
) -> dict[tuple[str, str, str], float]:
    """Last run's durations: the longest checks start first, so the run ends sooner."""
    try:
        results = SmokeResults.load(project, name, path=results_dir / SMOKE_RESULTS)
    except RecordError:
        return {}  # none, or damaged: this run writes them anew
    found = {}
    for plat, entry in results.platforms.items():
        for c in entry.checks:
            found[plat, c.kind, c.name] = c.duration
        if entry.imports is not None:
            found[plat, "imports", "imports"] = entry.imports.container_seconds
    return found


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
    previous = _previous_durations(project, name, results_dir)
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
    publish_results(project, report, work, outputs)
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
