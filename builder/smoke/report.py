"""The result files of a smoke run in ``build/smoke/NAME/``: ``junit.xml`` (for CI),
``summary.md`` (for people: failing cells and tracebacks), ``results.json`` (what
``publish`` reads) and ``outputs/`` (executed notebooks and every run's log)."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from builder.fsutil import write_atomic
from builder.project import SMOKE_RESULTS, Project, oci_platform
from builder.records import CheckResult, NotebookResult, PlatformResults, SmokeResults
from builder.smoke.results import Check, SmokeReport, Target, clean


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


def publish_results(project: Project, report: SmokeReport, work: Path, outputs: Path) -> None:
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
    results_record(report).save(project, path=results_dir / SMOKE_RESULTS)


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


def results_record(report: SmokeReport) -> SmokeResults:
    platforms = {}
    for target in report.targets:
        checks = report.platform_checks(target.platform)
        platforms[target.platform] = PlatformResults(
            oci_platform=target.oci_platform,
            passed=report.platform_passed(target.platform),
            ref=target.ref,
            image_id=target.image_id,
            lock_hash=target.lock_hash,
            problem=target.problem,
            duration=round(report.wall.get(target.platform, 0.0), 3),
            container_seconds=round(sum(c.duration for c in checks if c.kind != "import"), 3),
            failed=[_testcase_name(c) for c in checks if c.failed],
            notebooks={
                c.name: NotebookResult(passed=not c.failed, duration=round(c.duration, 3))
                for c in checks
                if c.kind == "notebook"
            },
            imports=report.imports.get(target.platform),
            checks=[CheckResult.model_validate(c.to_dict()) for c in checks],
        )
    return SmokeResults(
        distribution=report.distribution,
        passed=report.passed,
        lock_hash=report.lock_hash,
        duration=round(report.duration, 3),
        platforms=platforms,
    )
