"""Lock integrity: damaged locks that are still valid YAML are refused by every reader."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path) -> Path:
    shutil.copytree(REPO / "distributions" / "demo", tmp_path / "distributions" / "demo")
    shutil.copytree(REPO / "lockfiles" / "demo", tmp_path / "lockfiles" / "demo")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lock(root: Path) -> Path:
    return root / "lockfiles" / "demo" / "conda-lock.yml"


def _drop_entry(root: Path, name: str, platform: str) -> None:
    """Remove one package entry (a whole ``- name:`` block), as a truncation would."""
    path = _lock(root)
    head, *blocks = re.split(r"(?m)^(?=- name: )", path.read_text())
    kept = [b for b in blocks if not (f"- name: {name}\n" in b and f"platform: {platform}\n" in b)]
    assert len(kept) == len(blocks) - 1
    path.write_text(head + "".join(kept))


def _one_line(result) -> str:
    assert result.code == 1, result
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert len(result.err_lines) == 1, result.err_lines
    return result.err_lines[0]


def test_the_committed_lock_passes(demo, run_cli):
    assert run_cli("lock", "--check", "demo", root=demo).code == 0


def test_truncated_at_a_package_boundary_is_refused_by_check_and_context(demo, run_cli):
    text = _lock(demo).read_text()
    first_pip = text.rindex("\n- name: ", 0, text.index("manager: pip"))
    cut = text.rindex("\n- name: ", 0, first_pip)  # the last conda entry gone
    _lock(demo).write_text(text[: cut + 1])  # and the PyPI ones after it: still valid YAML
    line = _one_line(run_cli("lock", "--check", "demo", root=demo))
    assert "damaged: demo: lockfiles/demo/conda-lock.yml: package demo-stack" in line
    line = _one_line(run_cli("context", "demo", root=demo))
    assert "lockfiles/demo/conda-lock.yml" in line and "demo-tool" in line
    assert not (demo / "images").exists()


def test_a_pypi_package_missing_on_one_platform(demo, run_cli):
    _drop_entry(demo, "demo-pylib-extra", "linux-aarch64")
    line = _one_line(run_cli("lock", "--check", "demo", root=demo))
    assert "lockfiles/demo/conda-lock.yml: pip package demo-pyutil (linux-aarch64)" in line
    assert "'demo-pylib-extra >=0.1', which is locked neither from PyPI nor from conda" in line


def test_a_direct_dependency_missing_on_one_platform(demo, run_cli):
    _drop_entry(demo, "demo-stack", "linux-aarch64")
    line = _one_line(run_cli("lock", "--check", "demo", root=demo))
    assert "lockfiles/demo/conda-lock.yml" in line
    assert "demo-stack" in line and "linux-aarch64" in line
    assert "distributions/demo/distribution.yml" in line


def test_a_deleted_explicit_file(demo, run_cli):
    (demo / "lockfiles/demo/conda-linux-aarch64.lock").unlink()
    line = _one_line(run_cli("lock", "--check", "demo", root=demo))
    assert "lockfiles/demo/conda-linux-aarch64.lock: missing" in line


def test_an_explicit_file_that_disagrees(demo, run_cli):
    path = demo / "lockfiles/demo/conda-linux-64.lock"
    lines = path.read_text().splitlines()
    i = max(n for n, text in enumerate(lines) if text.startswith("https://"))  # the last package
    lines[i] = lines[i][:-1] + ("0" if lines[i][-1] != "0" else "1")
    path.write_text("\n".join(lines) + "\n")
    line = _one_line(run_cli("lock", "--check", "demo", root=demo))
    assert "lockfiles/demo/conda-linux-64.lock" in line and "md5" in line


def test_an_explicit_files_pip_line_that_disagrees(demo, run_cli):
    path = demo / "lockfiles/demo/conda-linux-aarch64.lock"
    path.write_text(path.read_text().replace("# pip demo-pyutil @", "# pip demo-pyutils @"))
    line = _one_line(run_cli("lock", "--check", "demo", root=demo))
    assert "lockfiles/demo/conda-linux-aarch64.lock" in line and "'# pip' line" in line


def test_explicit_files_in_another_order_agree(demo, run_cli):
    path = demo / "lockfiles/demo/conda-linux-64.lock"
    lines = path.read_text().splitlines()
    start = lines.index("@EXPLICIT") + 1
    path.write_text("\n".join(lines[:start] + lines[start:][::-1]) + "\n")
    assert run_cli("lock", "--check", "demo", root=demo).code == 0


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (r"sha256: ([0-9a-f]{64})", r"sha256: \1ab", "hash.sha256"),
        (r"sha256: [0-9a-f]{64}", "sha256: not-a-hash", "hash.sha256"),
        (r"md5: ([0-9a-f]{32})", r"md5: \1f", "hash.md5"),
    ],
)
def test_malformed_hashes_are_refused_by_check_and_bump(demo, run_cli, old, new, field):
    path = _lock(demo)
    path.write_text(re.sub(old, new, path.read_text(), count=1))
    before = path.read_bytes()
    line = _one_line(run_cli("lock", "--check", "demo", root=demo))
    assert f"lockfiles/demo/conda-lock.yml: package demo-data (linux-64): {field}" in line
    line = _one_line(run_cli("bump", "demo", "demo-data", root=demo))
    assert f"lockfiles/demo/conda-lock.yml: package demo-data (linux-64): {field}" in line
    assert path.read_bytes() == before
