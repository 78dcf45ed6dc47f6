"""The imports check: every module the distribution lists, imported in one Python process
in the image (``scripts/imports.py``), a testcase and an import time per module."""

from __future__ import annotations

import json
from collections.abc import Sequence

from builder.smoke.containers import Containers, script
from builder.smoke.results import TRACEBACK_LINES, Check, Target, clean, last_line, one_line

IMPORTS_TIMEOUT = 600


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
            script("imports.py"),
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
