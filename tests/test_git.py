"""builder/git.py, the git boundary: ``run`` fails in one line, ``output`` never fails."""

from __future__ import annotations

import pytest
from git_support import commit_all, git

from builder import git as git_cli
from builder.errors import ScistacksError


def test_run_outside_a_repository_is_one_line(tmp_path):
    with pytest.raises(ScistacksError) as info:
        git_cli.run(tmp_path, "log", "--oneline", field="--base")
    message = str(info.value)
    assert message.startswith("--base: git log: fatal: not a git repository")
    assert "\n" not in message
    assert git_cli.run(tmp_path, "log", check=False) == ""


def test_without_git_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ScistacksError) as info:
        git_cli.run(tmp_path, "status", field="--base")
    assert str(info.value) == "git is not installed (needed for --base)"
    assert git_cli.head(tmp_path) is None
    assert git_cli.origin(tmp_path) is None


def test_head_and_origin(tmp_path):
    assert git_cli.head(tmp_path) is None  # not a repository: nothing to note
    git(tmp_path, "init", "-q")
    assert git_cli.head(tmp_path) is None  # no commit yet
    assert git_cli.origin(tmp_path) is None
    (tmp_path / "f").write_text("x")
    sha = commit_all(tmp_path, "x")
    git(tmp_path, "remote", "add", "origin", "git@example.org:hub/stacks.git")
    assert git_cli.head(tmp_path) == sha
    assert git_cli.origin(tmp_path) == "git@example.org:hub/stacks.git"  # as configured
