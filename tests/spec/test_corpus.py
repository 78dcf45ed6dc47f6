"""Broken inputs through the real CLI: every one must end in ONE located error line.

Cases live in ``corpus/specs/CASE/`` (a project folder for ``scistacks validate``) and
``corpus/envs/CASE/`` (an ``environment.yml`` for ``scistacks new --from``). Each has an
``expect.txt``::

    # comment
    file: distributions/x/distribution.yml    # the file the error line must name
    field: dependencies[2]                    # the field (or "line N" for YAML errors)
    contains: any other substring             # repeatable

The errors are printed as ``FILE: FIELD: message`` (builder/errors.py), so when both a
file and a field are expected the line must contain ``FILE: FIELD``.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

CORPUS = Path(__file__).parent / "corpus"

# Inputs that are not text are written at test time rather than committed.
NUL_BYTES = b"name: binary\n\x00\x01\x02\xff\xfe\x00dependencies: []\n"
LATIN1 = "name: latin\ndescription: Café für Lehre\n".encode("latin-1")
GENERATED = {
    "specs/binary-file": {"distributions/binary/distribution.yml": NUL_BYTES},
    "specs/non-utf8-text": {"distributions/latin/distribution.yml": LATIN1},
    "envs/binary-file": {"environment.yml": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"},
    "envs/non-utf8-text": {
        "environment.yml": "name: café\ndependencies: [python]\n".encode("latin-1")
    },
}

# The project `new --from` imports into: a parent that pins python and provides numpy.
ENV_PARENT = {
    "base": {
        "name": "base",
        "channels": ["conda-forge"],
        "platforms": ["linux-64"],
        "dependencies": ["python 3.12.*", "numpy >=2", "pip"],
    }
}


@dataclass
class Expect:
    file: str | None = None
    field: str | None = None
    contains: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Expect:
        out = cls()
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition(":")
            assert sep, f"{path}: bad line {raw!r}"
            key, value = key.strip(), value.strip()
            if key == "contains":
                out.contains.append(value)
            elif key in ("file", "field"):
                setattr(out, key, value)
            else:
                raise AssertionError(f"{path}: unknown key {key!r}")
        assert out.file or out.field, f"{path}: expect at least a file or a field"
        return out

    def check(self, line: str) -> None:
        if self.file and self.field:
            assert f"{self.file}: {self.field}" in line
        for wanted in [self.file, self.field, *self.contains]:
            if wanted:
                assert wanted in line, f"{wanted!r} missing from {line!r}"


def _cases(kind: str) -> list[str]:
    return sorted(p.name for p in (CORPUS / kind).iterdir() if (p / "expect.txt").is_file())


SPEC_CASES = _cases("specs")
ENV_CASES = _cases("envs")


def _copy_case(kind: str, case: str, dest: Path) -> Path:
    shutil.copytree(CORPUS / kind / case, dest, ignore=shutil.ignore_patterns("expect.txt"))
    for rel, content in GENERATED.get(f"{kind}/{case}", {}).items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    (dest / "distributions").mkdir(exist_ok=True)
    return dest


def _assert_one_clean_error(result) -> str:
    assert result.code != 0, f"expected a failure, got {result}"
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {lines!r}"
    assert lines[0].strip()
    return lines[0]


# ---------------------------------------------------------------- the corpus itself


def test_corpus_is_big_enough():
    assert len(SPEC_CASES) + len(ENV_CASES) >= 24
    assert len(ENV_CASES) >= 4


@pytest.mark.parametrize("case", sorted(GENERATED))
def test_generated_inputs_have_a_case(case):
    assert (CORPUS / case / "expect.txt").is_file()


@pytest.mark.parametrize("case", SPEC_CASES)
def test_spec_case_has_input(case):
    folder = CORPUS / "specs" / case
    has_specs = any(folder.glob("distributions/*/distribution.yml"))
    assert has_specs or f"specs/{case}" in GENERATED


# ---------------------------------------------------------------- scistacks validate


@pytest.mark.parametrize("case", SPEC_CASES)
def test_validate_reports_one_located_line(case, tmp_path, run_cli):
    expect = Expect.read(CORPUS / "specs" / case / "expect.txt")
    root = _copy_case("specs", case, tmp_path / case)
    line = _assert_one_clean_error(run_cli("validate", root=root))
    expect.check(line)


@pytest.mark.parametrize("case", SPEC_CASES)
def test_list_fails_cleanly_too(case, tmp_path, run_cli):
    """Commands that need the whole catalog stop at the first problem, in one line."""
    expect = Expect.read(CORPUS / "specs" / case / "expect.txt")
    root = _copy_case("specs", case, tmp_path / case)
    line = _assert_one_clean_error(run_cli("list", root=root))
    assert line.startswith("error: ")
    if expect.file:
        assert expect.file in line


# ---------------------------------------------------------------- scistacks new --from


@pytest.mark.parametrize("case", ENV_CASES)
def test_new_from_reports_one_located_line(case, tmp_path, make_project, run_cli):
    expect = Expect.read(CORPUS / "envs" / case / "expect.txt")
    workdir = _copy_case("envs", case, tmp_path / case)
    root = make_project(ENV_PARENT, subdir="project")
    result = run_cli(
        "new",
        "imported",
        "--from",
        "environment.yml",
        "--extends",
        "base",
        root=root,
        cwd=workdir,
    )
    line = _assert_one_clean_error(result)
    expect.check(line)
    # a failed import leaves nothing behind
    assert not (root / "distributions" / "imported").exists()


# ---------------------------------------------------------------- several problems at once


def test_validate_collects_independent_problems(make_project, run_cli):
    root = make_project(
        {
            "base": {"name": "base", "dependencies": ["python 3.12.*"]},
            "ok": {"name": "ok", "extends": "base", "dependencies": ["xarray"]},
            "typo": {"name": "typo", "extends": "base", "dependecies": ["numpy"]},
            "dupe": {"name": "dupe", "extends": "base", "dependencies": ["dask", "dask >=2025"]},
            "orphan": {"name": "orphan", "extends": "nowhere"},
            "badyaml": "name: badyaml\ndependencies: [python\n",
        }
    )
    result = run_cli("validate", root=root)
    assert result.code != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 4, lines
    expected = {
        "distributions/typo/distribution.yml: dependecies",
        "distributions/dupe/distribution.yml: dependencies[1]",
        "distributions/orphan/distribution.yml: extends",
        "distributions/badyaml/distribution.yml: line",
    }
    for prefix in expected:
        assert sum(prefix in line for line in lines) == 1, (prefix, lines)
    assert not any("distributions/ok/" in line or "distributions/base/" in line for line in lines)


def test_validate_names_only_their_own_problems(make_project, run_cli):
    root = make_project(
        {
            "base": {"name": "base", "dependencies": ["python 3.12.*"]},
            "good": {"name": "good", "extends": "base"},
            "bad": {"name": "bad", "extends": "base", "dependencies": ["python 3.10.*"]},
        }
    )
    ok = run_cli("validate", "good", root=root)
    assert ok.code == 0, ok
    assert ok.stderr == ""
    assert "good" in ok.stdout
    bad = run_cli("validate", "bad", root=root)
    assert bad.code != 0
    assert len(bad.err_lines) == 1
    assert "distributions/bad/distribution.yml: dependencies[0]" in bad.stderr


def test_validate_name_fails_when_its_parent_is_broken(make_project, run_cli):
    """A valid child of a broken parent has no effective spec: it is not 'valid'."""
    root = make_project(
        {
            "base": {"name": "base", "dependencies": ["python ==="]},
            "child": {"name": "child", "extends": "base"},
        }
    )
    result = run_cli("validate", "child", root=root)
    assert result.code != 0, result
    line = _assert_one_clean_error(result)
    assert "distributions/base/distribution.yml: dependencies[0]" in line


@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_validate_name_in_a_cycle_fails(name, make_project, run_cli):
    root = make_project(
        {
            "alpha": {"name": "alpha", "extends": "beta"},
            "beta": {"name": "beta", "extends": "alpha"},
        }
    )
    result = run_cli("validate", name, root=root)
    line = _assert_one_clean_error(result)
    assert ": extends: " in line
    assert "cycle" in line


def test_validate_unknown_name(make_project, run_cli):
    root = make_project({"base": {"name": "base"}})
    result = run_cli("validate", "nope", root=root)
    line = _assert_one_clean_error(result)
    assert "nope" in line


def test_not_a_project(tmp_path, run_cli):
    result = run_cli("validate", root=tmp_path)
    line = _assert_one_clean_error(result)
    assert str(tmp_path) in line
    assert "distributions" in line


def test_corpus_yaml_files_are_what_they_claim():
    """Guard against a case that is broken for a different reason than intended: the
    cases about content (not syntax) must at least be loadable YAML."""
    syntax_cases = {
        "yaml-syntax-error",
        "tab-indentation",
        "duplicate-yaml-key",
        "unhashable-key",
    }
    for case in SPEC_CASES:
        if case in syntax_cases or f"specs/{case}" in GENERATED:
            continue
        for spec in (CORPUS / "specs" / case).glob("distributions/*/distribution.yml"):
            yaml.safe_load(spec.read_text(encoding="utf-8"))
