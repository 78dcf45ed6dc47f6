"""Fault drills: a run killed while it writes, a full disk, a solver that raises.

Each leaves the old files exactly as they were (or, for a kill, each file whole: old or
new), says so in one line naming the folder, and a rerun completes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC = "distributions/demo/distribution.yml"


@pytest.fixture
def demo(tmp_path) -> Path:
    shutil.copytree(REPO / "distributions" / "demo", tmp_path / "distributions" / "demo")
    shutil.copytree(REPO / "lockfiles" / "demo", tmp_path / "lockfiles" / "demo")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _files(root: Path, sub: str) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / sub).rglob("*"))
        if p.is_file()
    }


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCISTACKS_")}
    return env | extra


def _cli(root: Path, *args: str, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=_env(**extra),
        timeout=120,
    )


def _move_the_lock(root: Path) -> None:
    """A spec change that gives demo a new lock (demo-data may move to 1.1)."""
    path = root / SPEC
    path.write_text(path.read_text().replace("  - demo-data 1.0.*", "  - demo-data >=1.0"))


def _kill_while_writing(root: Path, *args: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "builder", "--root", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(SCISTACKS_FAULT="lock-write:60"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "fault drill: paused at lock-write" in line:
            break
        assert line or proc.poll() is None, "the run ended before it wrote"
    else:
        proc.kill()
        pytest.fail("the run never reached its writes")
    # the new files are written next to the old ones now: kill it there
    temps = list((root / "lockfiles" / "demo").glob(".*.tmp"))
    assert temps, "expected the new lock in temp files"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    "args", [("lock", "--all"), ("bump", "demo", "demo-data")], ids=["lock-all", "bump"]
)
def test_kill_9_while_writing_leaves_the_old_lock(demo, args):
    old = _files(demo, "lockfiles")
    _move_the_lock(demo)
    _kill_while_writing(demo, *args)
    now = {k: v for k, v in _files(demo, "lockfiles").items() if not k.endswith(".tmp")}
    assert now == old  # intact, and so parseable: the context of the old lock still works
    assert _cli(demo, "lock", "--check").returncode == 1  # stale: the spec moved
    rerun = _cli(demo, *args)
    assert rerun.returncode == 0, rerun.stderr
    check = _cli(demo, "lock", "--check")
    assert check.returncode == 0, check.stderr
    assert _files(demo, "lockfiles") != old


def test_a_solver_raising_mid_solve_writes_nothing(demo):
    old = _files(demo, "lockfiles")
    _move_the_lock(demo)
    out = _cli(demo, "lock", "demo", SCISTACKS_FAULT="solver-raise:linux-aarch64")
    assert out.returncode == 1
    errors = [ln for ln in out.stderr.splitlines() if not ln.startswith("  solved ")]
    assert len(errors) == 1, out.stderr
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr
    assert SPEC in errors[0] and "linux-aarch64" in errors[0]
    assert _files(demo, "lockfiles") == old


# ---------------------------------------------------------------- a full disk

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)"
)


def _full_tmpfs(folder: Path):
    """Mount a 64k tmpfs on ``folder`` (its files copied in) and fill it up."""
    saved = {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
    for name, data in saved.items():
        (folder / name).write_bytes(data)
    filler = folder / "filler"
    try:
        with filler.open("wb") as fh:
            while True:
                fh.write(b"x" * 1024)
                fh.flush()
    except OSError:
        pass


def _umount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], check=False)


@needs_root
def test_lock_on_a_full_disk(demo):
    folder = demo / "lockfiles" / "demo"
    _move_the_lock(demo)
    _full_tmpfs(folder)
    try:
        before = _files(demo, "lockfiles")
        out = _cli(demo, "lock", "demo")
        after = _files(demo, "lockfiles")
        leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    finally:
        _umount(folder)
    assert out.returncode == 1
    errors = [ln for ln in out.stderr.splitlines() if not ln.startswith("  solved ")]
    assert errors == ["error: lockfiles/demo: cannot write: No space left on device"]
    assert after == before
    assert leftovers == []


@needs_root
def test_context_on_a_full_disk(demo):
    folder = demo / "images" / "demo" / "linux-64"
    _full_tmpfs(folder)
    try:
        out = _cli(demo, "context", "demo")
        names = sorted(p.name for p in folder.iterdir())
    finally:
        _umount(folder)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "error: images/demo/linux-64: cannot write: No space left on device"
    ]
    assert names == ["filler"]  # no partial context, no temp files
