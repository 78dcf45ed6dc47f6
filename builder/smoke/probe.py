"""The first container of each platform: does the image run a command at all, and where
are its ``jupyter``, ``jupyter nbconvert`` and ``python`` (``scripts/probe.sh``)?"""

from __future__ import annotations

from builder.smoke.containers import Containers, script
from builder.smoke.results import Check, Target, last_line

PROBE_TIMEOUT = 300  # seconds; python and jupyter start slowly under qemu


def probe(containers: Containers, target: Target) -> Check:
    """One container per image: does it run at all, and where are jupyter and python?"""
    outcome = containers.run(
        target,
        ["sh", "-c", script("probe.sh")],
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
