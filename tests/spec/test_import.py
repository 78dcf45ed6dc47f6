"""``scistacks new --from``: real environment.yml files import, bad ones touch nothing."""

from __future__ import annotations

import yaml

SPEC = "name: course\ndescription: hand written\ndependencies: [python]\n"


def _project(make_project):
    return make_project({"course": SPEC}, files={"distributions/course/notes.md": "keep me\n"})


def test_force_with_a_bad_environment_keeps_the_existing_distribution(
    make_project, run_cli, tmp_path
):
    root = _project(make_project)
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - python\n  - numpy\n  - numpy >=2\n")
    before = {p: p.read_bytes() for p in (root / "distributions").rglob("*") if p.is_file()}
    result = run_cli("new", "course", "--force", "--from", env, root=root)
    assert result.code == 1
    assert len(result.err_lines) == 1
    assert f"{env}: dependencies[2]" in result.stderr  # the environment.yml, not the spec
    assert "distributions/course" not in result.stderr
    after = {p: p.read_bytes() for p in (root / "distributions").rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in (root / "distributions").iterdir()] == ["course"]


def test_force_with_a_virtual_package_names_the_environment(make_project, run_cli, tmp_path):
    root = _project(make_project)
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - python\n  - __cuda\n")
    result = run_cli("new", "course", "--force", "--from", env, root=root)
    assert result.code == 1
    assert f"{env}: dependencies[1]" in result.stderr
    assert (root / "distributions/course/distribution.yml").read_text() == SPEC


REAL = """\
name: analysis
channels:
  - conda-forge
  - nodefaults
platforms:
  - linux-64
  - osx-arm64
dependencies:
  - python=3.12
  - numpy==2.1.0
  - bioconda::samtools
  - pywin32  # [win]
  - clang  # [unix]
  - pip
  - pip:
      - requests==2.32
"""


def test_a_real_environment_file_imports(make_project, run_cli, tmp_path):
    root = make_project({})
    env = tmp_path / "environment.yml"
    env.write_text(REAL)
    result = run_cli("new", "analysis", "--from", env, root=root)
    assert result.code == 0, result
    spec = yaml.safe_load((root / "distributions/analysis/distribution.yml").read_text())
    assert spec["channels"] == ["conda-forge", "bioconda"]  # nodefaults is no channel
    assert spec["platforms"] == ["linux-64", "osx-arm64"]
    assert spec["dependencies"] == [
        "python=3.12",
        "numpy==2.1.0",
        "bioconda::samtools",
        "clang",
        "pip",
    ]
    assert spec["pip"] == ["requests==2.32"]
    assert run_cli("validate", root=root).code == 0
    assert not [p for p in (root / "distributions").iterdir() if p.name.startswith(".")]


def test_a_selector_for_some_platforms_only_is_refused_by_line(make_project, run_cli, tmp_path):
    root = make_project({})
    env = tmp_path / "environment.yml"
    env.write_text(REAL.replace("clang  # [unix]", "libgcc  # [linux64]"))
    result = run_cli("new", "analysis", "--from", env, root=root)
    assert result.code == 1
    assert f"{env}: dependencies[4]" in result.stderr
    assert "linux64" in result.stderr
    assert not (root / "distributions/analysis").exists()


def test_an_unknown_selector_is_refused(make_project, run_cli, tmp_path):
    root = make_project({})
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - python\n  - clang  # [linuxx]\n")
    result = run_cli("new", "analysis", "--from", env, root=root)
    assert result.code == 1
    assert f"{env}: dependencies[1]" in result.stderr
    assert "linuxx" in result.stderr
