"""The notebook check: one notebook in its own container, executed by the image's own
``jupyter nbconvert --execute``; on failure, the cell that ran last and its traceback's
end, read from nbconvert's debug log (``explain_failure``)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from builder.smoke.containers import Containers
from builder.smoke.results import TRACEBACK_LINES, Check, Target, clean, last_line, one_line
from builder.spec.layering import NotebookRef

NOTEBOOKS_MOUNT = "/srv/smoke/notebooks"
OUTPUTS_MOUNT = "/srv/smoke/outputs"


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
