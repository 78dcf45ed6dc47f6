"""The ``scistacks`` command for specs: help, validate, show, list and new."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from builder.spec.matchspec import package_name

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.parent.name for p in (REPO_ROOT / "distributions").glob("*/distribution.yml"))
COMMANDS = ("validate", "show", "list", "new")


def _read_spec(name: str, root: Path = REPO_ROOT) -> dict:
    return yaml.safe_load((root / "distributions" / name / "distribution.yml").read_text())


def _dep(spec: dict, package: str) -> str:
    [found] = [d for d in spec["dependencies"] if package_name(d) == package]
    return found


# ---------------------------------------------------------------- help


def test_module_help(run_cli):
    code, out, err = run_cli("--help")
    assert code == 0, err
    assert "Usage:" in out
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\b", out, re.MULTILINE), command
    assert "--root" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(run_cli, command):
    code, out, err = run_cli(command, "-h")
    assert code == 0, err
    assert f"scistacks {command}" in out


def test_console_script_is_declared():
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("scistacks") == "builder.cli:main"


def test_console_script_help():
    script = Path(sys.executable).parent / "scistacks"
    script = str(script) if script.exists() else shutil.which("scistacks")
    if script is None:
        pytest.skip("the scistacks script is not installed next to this Python")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: scistacks" in proc.stdout


def test_version(run_cli):
    from builder import __version__

    code, out, _ = run_cli("--version")
    assert code == 0
    assert __version__ in out


def test_unknown_command_fails(run_cli):
    code, _, err = run_cli("frobnicate")
    assert code != 0
    assert "frobnicate" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- validate, show, list


def test_validate_shipped_distributions(run_cli):
    code, out, err = run_cli("validate", root=REPO_ROOT)
    assert code == 0, err
    assert err == ""
    for name in SHIPPED:
        assert name in out


def test_validate_shipped_distributions_by_name(run_cli):
    code, out, err = run_cli("validate", "pangeo", "gpu-ml", root=REPO_ROOT)
    assert code == 0, err
    assert "pangeo" in out and "gpu-ml" in out


def test_root_short_option_and_environment(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "builder", "-C", str(REPO_ROOT), "validate"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "SCISTACKS_ROOT": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "builder", "validate"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_show_pangeo_is_the_merged_spec(run_cli):
    code, out, err = run_cli("show", "pangeo", root=REPO_ROOT)
    assert code == 0, err
    shown = yaml.safe_load(out)
    base, pangeo = _read_spec("base"), _read_spec("pangeo")
    assert shown["name"] == "pangeo"
    assert shown["extends"] == "base"
    assert shown["inherits_from"] == ["base"]
    assert _dep(base, "python") in shown["dependencies"]
    assert _dep(pangeo, "xarray") in shown["dependencies"]
    assert set(base["dependencies"]) <= set(shown["dependencies"])
    assert set(pangeo["dependencies"]) <= set(shown["dependencies"])
    assert shown["channels"] == base["channels"]
    assert shown["platforms"] == base["platforms"]
    assert shown["virtual_packages"] == base["virtual_packages"]
    assert shown["hub"]["display_name"] == pangeo["hub"]["display_name"]
    notebook_paths = [nb["path"] for nb in shown["notebooks"]]
    assert f"distributions/base/{base['notebooks'][0]}" in notebook_paths
    assert f"distributions/pangeo/{pangeo['notebooks'][0]}" in notebook_paths


def test_show_gpu_ml_narrows_platforms(run_cli):
    code, out, err = run_cli("show", "gpu-ml", root=REPO_ROOT)
    assert code == 0, err
    shown = yaml.safe_load(out)
    assert shown["platforms"] == _read_spec("gpu-ml")["platforms"]
    assert shown["inherits_from"] == ["base", "pangeo"]
    assert "__cuda" in shown["virtual_packages"] and "__glibc" in shown["virtual_packages"]


def test_show_unknown_distribution(run_cli):
    code, _, err = run_cli("show", "nope", root=REPO_ROOT)
    assert code == 1
    assert len(err.splitlines()) == 1
    assert "nope" in err and "pangeo" in err  # names what exists


def _tree(out: str) -> list[tuple[int, str]]:
    """(depth, name) per line of ``scistacks list``."""
    rows = []
    for line in out.splitlines():
        match = re.match(r"^([│ ]*)(?:[├└]── )?([a-z0-9][a-z0-9._-]*)\s", line)
        assert match, line
        prefix = line[: match.start(2)]
        rows.append((len(prefix) // 4, match.group(2)))
    return rows


def test_list_is_a_tree(run_cli):
    code, out, err = run_cli("list", root=REPO_ROOT)
    assert code == 0, err
    rows = _tree(out)
    names = [name for _, name in rows]
    assert sorted(names) == SHIPPED
    assert rows[0] == (0, "base")
    depth = dict((name, d) for d, name in rows)
    assert depth["pangeo"] == 1 and depth["r-edu"] == 1 and depth["gpu-ml"] == 2
    # gpu-ml sits under pangeo: after it, with no shallower line in between
    i, j = names.index("pangeo"), names.index("gpu-ml")
    assert i < j and all(d > 1 for d, _ in rows[i + 1 : j])
    assert "linux-64" in out.splitlines()[j]


def test_list_tree_of_a_temp_project(make_project, run_cli):
    root = make_project(
        {
            "zroot": {"name": "zroot"},
            "kid": {"name": "kid", "extends": "zroot", "platforms": ["linux-64"]},
            "grandkid": {"name": "grandkid", "extends": "kid"},
            "aroot": {"name": "aroot", "description": "first root"},
        }
    )
    code, out, err = run_cli("list", root=root)
    assert code == 0, err
    assert _tree(out) == [(0, "aroot"), (0, "zroot"), (1, "kid"), (2, "grandkid")]
    assert "first root" in out.splitlines()[0]
    assert "[linux-64]" in out.splitlines()[3]


# ---------------------------------------------------------------- new --from

PARENT = {
    "base": {
        "name": "base",
        "channels": ["conda-forge"],
        "platforms": ["linux-64"],
        "dependencies": ["python 3.12.*", "numpy >=2", "pandas", "pip"],
        "pip": ["nbgitpuller"],
    }
}
ENVIRONMENT = """\
name: course
channels:
  - conda-forge
  - bioconda
dependencies:
  - python          # the parent has it: dropped
  - pandas          # the parent has it: dropped
  - pip             # the parent has it: dropped
  - numpy >=2.1     # narrower than the parent's: kept
  - python 3.12.*   # the very same spec as the parent's: dropped
  - xarray=2025.1   # new: kept
  - biopython       # new: kept
  - pip:
      - nbgitpuller # the parent has it: dropped
      - tqdm>=4.66  # new: kept
"""


def test_new_from_environment_with_parent(make_project, run_cli, tmp_path):
    root = make_project(PARENT)
    env = tmp_path / "environment.yml"
    env.write_text(ENVIRONMENT)
    code, out, err = run_cli("new", "course", "--from", env, "--extends", "base", root=root)
    assert code == 0, err
    assert "distributions/course/distribution.yml" in out
    spec = _read_spec("course", root)
    assert spec["name"] == "course"
    assert spec["extends"] == "base"
    assert spec["channels"] == ["bioconda"]
    assert spec["dependencies"] == ["numpy >=2.1", "xarray=2025.1", "biopython"]
    assert spec["pip"] == ["tqdm>=4.66"]
    # what it wrote validates, and merges to the environment's content
    code, out, err = run_cli("validate", root=root)
    assert code == 0, err
    code, out, err = run_cli("show", "course", root=root)
    shown = yaml.safe_load(out)
    assert shown["channels"] == ["conda-forge", "bioconda"]
    for dep in ("python 3.12.*", "numpy >=2.1", "pandas", "pip", "xarray=2025.1", "biopython"):
        assert dep in shown["dependencies"]
    assert sorted(shown["pip"]) == ["nbgitpuller", "tqdm>=4.66"]


def test_new_from_environment_without_parent(make_project, run_cli, tmp_path):
    root = make_project(PARENT)
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - python=3.12\n  - numpy\n")
    code, _, err = run_cli("new", "standalone", "--from", env, root=root)
    assert code == 0, err
    spec = _read_spec("standalone", root)
    assert "extends" not in spec
    assert spec["channels"] == ["conda-forge"]  # an environment.yml without channels
    assert spec["dependencies"] == ["python=3.12", "numpy"]
    assert run_cli("validate", "standalone", root=root).code == 0


def test_new_refuses_to_overwrite(make_project, run_cli, tmp_path):
    root = make_project(PARENT)
    env = tmp_path / "environment.yml"
    env.write_text(ENVIRONMENT)
    args = ("new", "course", "--from", env, "--extends", "base")
    assert run_cli(*args, root=root).code == 0
    target = root / "distributions" / "course" / "distribution.yml"
    target.write_text(target.read_text() + "# hand edits\n")
    before = target.read_text()

    env.write_text("dependencies:\n  - scipy\n")
    code, _, err = run_cli(*args, root=root)
    assert code == 1
    assert len(err.splitlines()) == 1
    assert "distributions/course/distribution.yml" in err and "--force" in err
    assert target.read_text() == before

    code, _, err = run_cli(*args, "--force", root=root)
    assert code == 0, err
    assert _read_spec("course", root)["dependencies"] == ["scipy"]


def test_new_refuses_a_parent_that_already_exists_as_name(make_project, run_cli, tmp_path):
    root = make_project(PARENT)
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - scipy\n")
    code, _, err = run_cli("new", "base", "--from", env, root=root)
    assert code == 1
    assert "distributions/base/distribution.yml" in err
    assert _read_spec("base", root) == PARENT["base"]


@pytest.mark.parametrize("name", ["Course", "my course", "-x", "a/b"])
def test_new_refuses_bad_names(make_project, run_cli, tmp_path, name):
    root = make_project(PARENT)
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - scipy\n")
    code, _, err = run_cli("new", "--from", env, "--", name, root=root)
    assert code == 1
    assert len(err.splitlines()) == 1
    assert name in err
    assert sorted(p.name for p in (root / "distributions").iterdir()) == ["base"]


def test_new_with_unknown_parent(make_project, run_cli, tmp_path):
    root = make_project(PARENT)
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - scipy\n")
    code, _, err = run_cli("new", "course", "--from", env, "--extends", "ghost", root=root)
    assert code == 1
    assert len(err.splitlines()) == 1 and "ghost" in err
    assert not (root / "distributions" / "course").exists()


def test_new_from_missing_file(make_project, run_cli, tmp_path):
    root = make_project(PARENT)
    code, _, err = run_cli("new", "course", "--from", tmp_path / "nope.yml", root=root)
    assert code != 0
    assert "nope.yml" in err
    assert "Traceback" not in err
