"""The hub checks: what a JupyterHub spawner needs of an image (``start`` through the
entrypoint, ``jupyterhub-singleuser``, uid 1000, a writable HOME, the env's python first,
a server that answers), in one container running ``scripts/hub.sh`` as the image's user.
"""

from __future__ import annotations

import contextlib
import math
from importlib import resources

from builder.smoke.containers import SCRIPTS, Containers
from builder.smoke.results import Check, Target, clean, last_line, one_line
from builder.spec.layering import Distribution

HUB_SERVER_TIMEOUT = 120  # the server must answer within this
HUB_TIMEOUT = HUB_SERVER_TIMEOUT + 180
EMULATION_SLOWDOWN = 3  # both limits, for an image of another architecture
HUB_USER = "jovyan"
HUB_PORT = 8888
HUB_MOUNT = "/tmp/scistacks-smoke"  # hub.sh runs its siblings from here
HUB_SCRIPTS = ("hub.sh", "hub_probe.py", "hub_smoke.py")
HUB_CHECKS = ("start", "singleuser", "uid", "home", "python", "server")


def run_hub_checks(containers: Containers, target: Target, dist: Distribution) -> list[Check]:
    # the env prefix and where the native engine puts `start` (repo2docker names it in
    # $R2D_ENTRYPOINT)
    from builder.image.native import ENV_PREFIX, START

    # a hub and a server starting under qemu take several times as long
    slow = EMULATION_SLOWDOWN if target.emulated else 1
    with contextlib.ExitStack() as stack:
        mounts = [
            (
                stack.enter_context(resources.as_file(SCRIPTS / name)).resolve(),
                f"{HUB_MOUNT}/{name}",
                True,
            )
            for name in HUB_SCRIPTS
        ]
        outcome = containers.run(
            target,
            [
                "sh",
                f"{HUB_MOUNT}/hub.sh",
                HUB_USER,
                str(HUB_PORT),
                str(HUB_SERVER_TIMEOUT * slow),
                ENV_PREFIX,
                START,
            ],
            timeout=HUB_TIMEOUT * slow,
            logs=containers.work / target.platform / "hub",
            mounts=mounts,
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
                check.message = (
                    f"hub checks timed out after {HUB_TIMEOUT * slow} s before this check"
                )
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
