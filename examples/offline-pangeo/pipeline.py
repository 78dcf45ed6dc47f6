#!/usr/bin/env python3
"""The offline-pangeo example, end to end: what ``nox -s offline-pangeo`` runs.

1. build the conda channel from upstream sources (``build-channel.py``; cached);
2. lock ``base`` and ``pangeo`` against it;
3. build ``pangeo`` for linux/amd64 with the native engine;
4. smoke-test it: the pangeo and base notebooks, the imports, and the hub checks run by
   the environment's own ``jupyterhub-singleuser``, all with ``--network none``;
5. publish it to the local registry, SBOM attached, and attach its profile snippet;
6. ``scistacks run --detach`` the published image and check that the server answers with
   its token, refuses without it, and serves JupyterLab.

Each step is the ``scistacks`` command a user would type, run as a whole process. Prints
one timing line per step and exits non-zero at the first failure, naming the step.

Usage: python examples/offline-pangeo/pipeline.py [--registry REG/NS] [--keep-running]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DIST = "pangeo"
PLATFORM = "linux/amd64"


class StepFailed(Exception):
    pass


def step(name: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    started = time.monotonic()
    print(
        f"[offline-pangeo] {name}: {' '.join(argv[2:] if argv[1:2] == ['-m'] else argv)}",
        flush=True,
    )
    proc = subprocess.run(argv, text=True, capture_output=True, **kwargs)
    seconds = time.monotonic() - started
    for line in proc.stderr.splitlines():
        print(f"    {line}", flush=True)
    if proc.returncode != 0:
        raise StepFailed(f"{name} failed (exit {proc.returncode}) after {seconds:.0f}s")
    print(f"[offline-pangeo] {name}: done in {seconds:.1f}s", flush=True)
    return proc


def scistacks(*args: str) -> list[str]:
    return [sys.executable, "-m", "builder", "--root", str(HERE), *args]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def check_server(url: str) -> None:
    """The detached server answers its token, refuses without it, and serves /lab."""
    match = re.match(r"(http://127\.0\.0\.1:\d+)/.*[?&]token=([0-9a-f]+)", url)
    if not match:
        raise StepFailed(f"run printed no URL with a token: {url!r}")
    base, token = match.groups()
    status, body = get(f"{base}/api/status?token={token}")
    if status != 200 or "started" not in json.loads(body or b"{}"):
        raise StepFailed(f"{base}/api/status answered {status} with the token")
    status, _ = get(f"{base}/api/status")
    if status != 403:
        raise StepFailed(f"{base}/api/status answered {status} without the token (want 403)")
    status, body = get(f"{base}/lab?token={token}")
    if status != 200 or b"JupyterLab" not in body:
        raise StepFailed(f"{base}/lab answered {status}, not JupyterLab")
    status, body = get(f"{base}/api/kernelspecs?token={token}")
    specs = json.loads(body or b"{}").get("kernelspecs", {})
    if status != 200 or "python3" not in specs:
        raise StepFailed(f"the server lists no python3 kernel: {sorted(specs)}")
    print(f"[offline-pangeo] run: {base} answers with its token, 403 without, /lab served")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", default="localhost:5000/offline-pangeo")
    parser.add_argument("--keep-running", action="store_true", help="leave the server up")
    args = parser.parse_args()
    started = time.monotonic()
    container = None
    try:
        step("channel", [sys.executable, str(HERE / "build-channel.py")])
        step("lock", scistacks("lock", "--all"))
        step("build", scistacks("build", DIST, "--platform", PLATFORM, "--engine", "native"))
        step("smoke", scistacks("smoke", DIST, "--platform", PLATFORM))
        step("publish", scistacks("publish", DIST, "--registry", args.registry))
        step("profiles", scistacks("profiles", "--registry", args.registry, "--attach", DIST))
        workdir = tempfile.mkdtemp(prefix="offline-pangeo-work-")  # what run mounts at work/
        run = step(
            "run",
            scistacks("run", DIST, "--registry", args.registry, "--detach", "--workdir", workdir),
        )
        url = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
        named = re.search(r"running as (\S+);", run.stderr)
        container = named.group(1) if named else None
        check_server(url)
    except StepFailed as exc:
        print(f"[offline-pangeo] error: {exc}", file=sys.stderr)
        return 1
    finally:
        if container and not args.keep_running:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    print(f"[offline-pangeo] all steps passed in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
