"""Smoke results from other machines (CI runs one runner per platform) joined into
``build/smoke/NAME/``: ``results.json`` per platform, ``summary.md`` and ``junit.xml``."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from builder.errors import SmokeError
from builder.fsutil import write_atomic
from builder.project import SMOKE_RESULTS, Project
from builder.records import SmokeResults


def merge_results(project: Project, name: str, others: Iterable[Path]) -> SmokeResults:
    """Join smoke results written on other machines (one CI runner per platform) into
    ``build/smoke/NAME/``: results.json per platform, summary.md and junit.xml joined."""
    results_dir = project.results_dir(name)
    dirs = ([results_dir] if project.smoke_results(name).is_file() else []) + [
        Path(d) for d in others
    ]
    merged: SmokeResults | None = None
    summaries: list[str] = []
    suites: list[ET.Element] = []
    for d in dirs:
        results = SmokeResults.load(project, name, path=d / SMOKE_RESULTS)
        if merged is None:
            merged = results.model_copy(update={"platforms": {}})
        elif results.lock_hash != merged.lock_hash:
            raise SmokeError(
                "results of another lock",
                file=project.relative(d / SMOKE_RESULTS),
                field="lock_hash",
            )
        merged.platforms.update(results.platforms)
        merged.duration = max(merged.duration, results.duration)
        summary = (d / "summary.md").read_text() if (d / "summary.md").is_file() else ""
        summaries.append(summary[summary.find("\n## ") + 1 :] if "\n## " in summary else "")
        # results.json is what publish reads; a missing or broken report is not fatal
        with contextlib.suppress(OSError, ET.ParseError):
            suites += list(ET.parse(d / "junit.xml").getroot())
    if merged is None:
        raise SmokeError(f"no smoke results to merge for {name}")
    merged.passed = all(e.passed for e in merged.platforms.values())
    verdict = "passed" if merged.passed else "FAILED"
    header = f"# Smoke tests: {name}\n\n**{verdict}** on {len(merged.platforms)} platforms\n\n"
    root = ET.Element("testsuites", name=f"scistacks smoke {name}")
    for suite in {s.get("name"): s for s in suites}.values():  # a platform's latest run
        root.append(suite)
    write_atomic(results_dir / "junit.xml", ET.tostring(root, encoding="unicode") + "\n")
    write_atomic(results_dir / "summary.md", header + "".join(summaries))
    merged.save(project)
    return merged
