"""Docker, buildx, arm64 emulation and the local registry, for tests marked with them.

Outside CI a missing piece skips the test with the reason. Under ``CI=true`` it fails:
CI must never skip the docker tests silently (``.ci/run`` sets the host up first).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import urllib.request

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REGISTRY = os.environ.get("SCISTACKS_TEST_REGISTRY", "localhost:5000")
BASE_IMAGES = {
    "amd64": "scistacks/debian:bookworm-amd64",
    "arm64": "scistacks/debian:bookworm-arm64",
}


def _run(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


@functools.cache
def docker_problem() -> str | None:
    if not shutil.which("docker"):
        return "no docker client on PATH"
    try:
        if _run("docker", "info", "--format", "{{.ServerVersion}}").returncode != 0:
            return "docker daemon not reachable (run scripts/setup-host.sh)"
        if _run("docker", "buildx", "version").returncode != 0:
            return "docker buildx missing (run scripts/setup-host.sh)"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker not usable: {exc}"
    missing = [
        ref
        for ref in BASE_IMAGES.values()
        if _run("docker", "image", "inspect", ref).returncode != 0
    ]
    if missing:
        return f"base image(s) {', '.join(missing)} missing (run scripts/setup-host.sh)"
    return None


@functools.cache
def arm64_problem() -> str | None:
    problem = docker_problem()
    if problem:
        return problem
    out = _run(
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        "--platform",
        "linux/arm64",
        BASE_IMAGES["arm64"],
        "uname",
        "-m",
        timeout=120,
    )
    if out.returncode != 0 or out.stdout.strip() != "aarch64":
        return f"arm64 emulation not working (qemu binfmt): {out.stderr.strip()[:200]}"
    return None


@functools.cache
def registry_problem() -> str | None:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5) as resp:
            return None if resp.status == 200 else f"registry {REGISTRY} answered {resp.status}"
    except Exception as exc:
        return f"no registry at {REGISTRY} ({exc}); run scripts/setup-host.sh"


def pytest_collection_modifyitems(config, items):
    checks = {"docker": docker_problem, "arm64": arm64_problem, "registry": registry_problem}
    for item in items:
        for marker, check in checks.items():
            if item.get_closest_marker(marker) is None:
                continue
            problem = check()
            if problem is None:
                continue
            if IN_CI:
                # a hard failure at setup, never a skip
                item.user_properties.append(("ci_failure", problem))
                item.fixturenames.insert(0, "_fail_in_ci")
            else:
                item.add_marker(pytest.mark.skip(reason=f"{marker}: {problem}"))
            break


@pytest.fixture
def _fail_in_ci(request):
    problem = dict(request.node.user_properties).get("ci_failure")
    pytest.fail(f"CI=true but the container host is not ready: {problem}")
