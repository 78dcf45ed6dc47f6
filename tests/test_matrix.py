"""``scistacks matrix`` against real git histories built in a temporary repository."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from git_support import commit_all, git

from builder.matrix import affected, changed_files, matrix
from builder.project import Project
from builder.spec import Catalog

REPO = Path(__file__).resolve().parent.parent
FAMILY = ["base", "pangeo", "r-edu", "gpu-ml"]


def touch(root: Path, rel: str, text: str = "changed\n") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(text)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A project repository: the real family's specs, a lockfile, a context, builder code."""
    root = tmp_path / "repo"
    for name in FAMILY:
        shutil.copy2(
            REPO / "distributions" / name / "distribution.yml",
            _mk(root / "distributions" / name) / "distribution.yml",
        )
    touch(root, "lockfiles/r-edu/packages.md", "# r-edu\n")
    touch(root, "images/pangeo/linux-64/environment.yml", "name: pangeo\n")
    touch(root, "builder/__init__.py", "")
    touch(root, "pyproject.toml", "[project]\nname = 'x'\n")
    touch(root, "README.md", "# x\n")
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "start")
    return root


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def jobs_of(root: Path, base: str | None) -> set[tuple[str, str]]:
    project = Project.at(root)
    return {
        (j["distribution"], j["platform"])
        for j in matrix(project, Catalog.load(project), base)["include"]
    }


def test_without_base_every_image_job(repo):
    assert jobs_of(repo, None) == {
        ("base", "linux-64"),
        ("base", "linux-aarch64"),
        ("pangeo", "linux-64"),
        ("pangeo", "linux-aarch64"),
        ("r-edu", "linux-64"),
        ("r-edu", "linux-aarch64"),
        ("gpu-ml", "linux-64"),  # gpu-ml locks linux-64 only
    }


def test_a_notebook_of_a_parent_affects_its_descendants(repo):
    touch(repo, "distributions/pangeo/notebooks/extra.ipynb", "{}\n")
    commit_all(repo, "notebook")
    assert jobs_of(repo, "HEAD~1") == {
        ("pangeo", "linux-64"),
        ("pangeo", "linux-aarch64"),
        ("gpu-ml", "linux-64"),
    }


def test_a_lockfile_affects_only_its_distribution(repo):
    touch(repo, "lockfiles/r-edu/packages.md")
    commit_all(repo, "lock")
    assert jobs_of(repo, "HEAD~1") == {("r-edu", "linux-64"), ("r-edu", "linux-aarch64")}


def test_the_root_spec_affects_the_whole_family(repo):
    touch(repo, "distributions/base/distribution.yml", "# a comment\n")
    commit_all(repo, "base")
    assert {d for d, _ in jobs_of(repo, "HEAD~1")} == set(FAMILY)


@pytest.mark.parametrize("path", ["builder/lock/new.py", "pyproject.toml"])
def test_builder_changes_affect_everything(repo, path):
    touch(repo, path, "# x\n")
    commit_all(repo, "tool")
    assert jobs_of(repo, "HEAD~1") == jobs_of(repo, None)


def test_unrelated_changes_give_an_empty_matrix(repo, run_cli):
    touch(repo, "README.md")
    touch(repo, "lockfiles/retired/packages.md")  # a distribution that no longer exists
    commit_all(repo, "docs")
    result = run_cli("matrix", "--base", "HEAD~1", root=repo)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"include": []}


def test_uncommitted_and_untracked_files_count(repo):
    touch(repo, "images/pangeo/linux-64/environment.yml")  # modified, not committed
    touch(repo, "images/r-edu/linux-aarch64/apt.txt", "git\n")  # untracked
    project = Project.at(repo)
    assert changed_files(project, "HEAD") == [
        "images/pangeo/linux-64/environment.yml",
        "images/r-edu/linux-aarch64/apt.txt",
    ]
    assert set(affected(Catalog.load(project), changed_files(project, "HEAD"))) == {
        "pangeo",
        "gpu-ml",
        "r-edu",
    }


def test_a_branch_is_compared_with_where_it_left_the_base(repo):
    git(repo, "switch", "-q", "-c", "feature")
    touch(repo, "distributions/r-edu/notebooks/new.ipynb", "{}\n")
    commit_all(repo, "feature work")
    git(repo, "switch", "-q", "main")
    touch(repo, "distributions/gpu-ml/distribution.yml", "# landed on main meanwhile\n")
    commit_all(repo, "main moves on")
    git(repo, "switch", "-q", "feature")
    # gpu-ml changed on main, not on this branch: it is not this branch's job
    assert {d for d, _ in jobs_of(repo, "main")} == {"r-edu"}


def test_deleted_and_renamed_files_count_on_both_sides(repo):
    (repo / "lockfiles" / "pangeo").mkdir()
    git(repo, "mv", "lockfiles/r-edu/packages.md", "lockfiles/pangeo/packages.md")
    commit_all(repo, "move")
    assert {d for d, _ in jobs_of(repo, "HEAD~1")} == {"r-edu", "pangeo", "gpu-ml"}


def test_json_for_github_actions(repo, run_cli):
    touch(repo, "distributions/gpu-ml/notebooks/x.ipynb", "{}\n")
    commit_all(repo, "gpu")
    result = run_cli("matrix", "--base", "HEAD~1", root=repo)
    assert result.code == 0, result.stderr
    assert "\n" not in result.stdout.strip()  # one line, for $GITHUB_OUTPUT
    assert json.loads(result.stdout) == {
        "include": [
            {
                "distribution": "gpu-ml",
                "platform": "linux-64",
                "oci_platform": "linux/amd64",
                "runner": "ubuntu-24.04",
            }
        ]
    }
    assert "gpu-ml: distributions/gpu-ml/notebooks/x.ipynb changed" in result.stderr


def test_arm64_jobs_run_on_arm_runners(repo):
    project = Project.at(repo)
    for job in matrix(project, Catalog.load(project))["include"]:
        arm = job["platform"] == "linux-aarch64"
        assert job["oci_platform"] == ("linux/arm64" if arm else "linux/amd64")
        assert job["runner"] == ("ubuntu-24.04-arm" if arm else "ubuntu-24.04")


def test_unknown_base_is_one_line(repo, run_cli):
    result = run_cli("matrix", "--base", "origin/nope", root=repo)
    assert result.code == 1
    assert (
        len(result.err_lines) == 1
        and "origin/nope" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_not_a_git_repository_is_one_line(tmp_path, run_cli):
    root = tmp_path / "plain"
    shutil.copytree(REPO / "distributions" / "base", root / "distributions" / "base")
    result = run_cli("matrix", "--base", "main", root=root)
    assert result.code == 1 and len(result.err_lines) == 1 and "git" in result.stderr
