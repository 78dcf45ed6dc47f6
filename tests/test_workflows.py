"""The GitHub workflows in .github/workflows are consistent with the code they run.

They cannot run here (no GitHub), so check what can go wrong without running them: YAML,
job references, the ``scistacks`` commands and options they call, the matrix keys.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from builder.cli import cli
from builder.matrix import KEYS, jobs
from builder.project import Project
from builder.spec import Catalog

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))

# Commands the workflows call that other pipeline stages are adding; this list shrinks as
# they land in builder/cli/ (a listed name that exists is checked like any other).
NOT_YET_IMPLEMENTED: set[str] = set()


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True
    if True in data:
        data["on"] = data.pop(True)
    return data


def run_scripts(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            if "run" in step:
                yield job_id, step["run"]


def scistacks_calls(script: str) -> list[list[str]]:
    """The argument lists of every ``scistacks`` call in a shell script."""
    text = script.replace("\\\n", " ")
    calls = []
    for line in text.splitlines():
        line = re.sub(r"\$\(|`|\)", " ", line)  # command substitutions
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            tokens = line.split()
        for i, tok in enumerate(tokens):
            if tok == "scistacks":
                rest = []
                for t in tokens[i + 1 :]:
                    if t in ("|", "||", "&&", ";", ">", ">>", "2>&1") or t.startswith(">"):
                        break
                    rest.append(t)
                calls.append(rest)
    return calls


def resolve(args: list[str]) -> tuple[click.Command | None, list[str], list[str]]:
    """(command, its path, its option tokens); command None when it does not exist."""
    group: click.Command = cli
    path: list[str] = []
    i = 0
    while isinstance(group, click.Group):
        while i < len(args) and args[i].startswith("-"):  # group options (--root DIR)
            i += 2 if args[i] in ("--root", "-C") else 1
        if i >= len(args):
            return group, path, []
        sub = group.get_command(click.Context(group), args[i])  # commands load lazily
        path.append(args[i])
        if sub is None:
            return None, path, []
        group, i = sub, i + 1
    options = [a.split("=", 1)[0] for a in args[i:] if a.startswith("-")]
    return group, path, options


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict]:
    assert WORKFLOWS, "no workflows in .github/workflows"
    return {p.name: load(p) for p in WORKFLOWS}


def test_the_three_workflows_exist(workflows):
    assert {"pull-request.yml", "publish.yml", "weekly-bump.yml"} <= set(workflows)


def test_triggers_and_minimal_permissions(workflows):
    assert "pull_request" in workflows["pull-request.yml"]["on"]
    push = workflows["publish.yml"]["on"]["push"]
    assert push["branches"] == ["main"] and push["tags"]
    assert workflows["weekly-bump.yml"]["on"]["schedule"][0]["cron"]
    for name, wf in workflows.items():
        assert "permissions" in wf, f"{name}: no top-level permissions"
        assert set(wf["permissions"]) <= {"contents", "pull-requests"}, name
    for name in ("pull-request.yml", "publish.yml"):
        assert workflows[name]["permissions"] == {"contents": "read"}, name
    # only the job that pushes images may write packages
    writers = [
        (n, j)
        for n, wf in workflows.items()
        for j, job in wf["jobs"].items()
        if job.get("permissions", {}).get("packages") == "write"
    ]
    assert writers == [("publish.yml", "publish")]


def test_needs_name_existing_jobs_and_outputs(workflows):
    for name, wf in workflows.items():
        jobs_ = wf["jobs"]
        for job_id, job in jobs_.items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            for n in needs:
                assert n in jobs_, f"{name}: {job_id} needs unknown job {n!r}"
            # needs.X.outputs.Y: X is needed and declares Y
            text = yaml.safe_dump(job)
            for other, output in re.findall(r"needs\.([\w-]+)\.outputs\.([\w-]+)", text):
                assert other in needs, f"{name}: {job_id} reads {other} without needing it"
                assert output in jobs_[other].get("outputs", {}), (
                    f"{name}: {other} has no output {output}"
                )


def test_pinned_action_versions(workflows):
    # current majors, all on node24 (the node20 runtime is deprecated on GitHub's runners)
    expected = {
        "actions/checkout": "v6",
        "actions/setup-python": "v6",
        "actions/upload-artifact": "v7",
        "actions/download-artifact": "v8",
    }
    for name, wf in workflows.items():
        for job in wf["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    action, _, version = step["uses"].partition("@")
                    assert version, f"{name}: unpinned {action}"
                    if action in expected:
                        assert version == expected[action], f"{name}: {step['uses']}"


def test_every_scistacks_command_exists_in_the_cli(workflows):
    called = set()
    for name, wf in workflows.items():
        for job_id, script in run_scripts(wf):
            for args in scistacks_calls(script):
                command, path, options = resolve(args)
                called.add(path[0] if path else "")
                if command is None:
                    assert path[0] in NOT_YET_IMPLEMENTED, (
                        f"{name}/{job_id}: no command scistacks {' '.join(path)}"
                    )
                    continue
                known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
                for opt in options:
                    assert opt in known, (
                        f"{name}/{job_id}: scistacks {' '.join(path)} has no option {opt}"
                    )
    # the maintainer flow's own commands are really called
    assert {"validate", "lock", "matrix", "diff", "bump", "publish", "profiles"} <= called


def test_allow_list_only_holds_missing_commands():
    commands = set(cli.list_commands(click.Context(cli)))
    missing = NOT_YET_IMPLEMENTED - commands
    landed = NOT_YET_IMPLEMENTED & commands
    # print which ones have landed so the list can shrink
    print(f"not yet in the CLI: {sorted(missing)}; landed: {sorted(landed)}")
    assert not ({"bump", "diff", "matrix", "lock", "validate"} & NOT_YET_IMPLEMENTED)


def test_matrix_jobs_use_only_keys_the_matrix_command_emits(workflows):
    catalog = Catalog.load(Project.at(REPO))
    emitted = jobs(catalog, catalog.names())
    assert emitted and all(set(job) == set(KEYS) for job in emitted)
    uses = 0
    for name, wf in workflows.items():
        for job_id, job in wf["jobs"].items():
            text = yaml.safe_dump(job)
            keys = set(re.findall(r"(?<![\w.])matrix\.([\w-]+)", text))
            if not keys:
                continue
            uses += 1
            matrix = job["strategy"]["matrix"]
            assert re.fullmatch(
                r"\$\{\{ fromJSON\(needs\.[\w-]+\.outputs\.matrix\) \}\}", matrix
            ), (name, job_id)
            assert keys <= set(KEYS), (
                f"{name}/{job_id}: matrix keys {keys - set(KEYS)} are not emitted"
            )
            assert job["runs-on"] == "${{ matrix.runner }}", (
                f"{name}/{job_id}: not on the native runner"
            )
            assert job.get("if") == "needs.matrix.outputs.any == 'true'", (
                f"{name}/{job_id}: an empty matrix fails the run; guard it"
            )
    assert uses == 2  # the pull-request and publish builds


def test_matrix_comes_from_scistacks_matrix_against_the_base(workflows):
    pr = workflows["pull-request.yml"]["jobs"]["matrix"]
    scripts = " ".join(s["run"] for s in pr["steps"] if "run" in s)
    assert 'scistacks matrix --base "$BASE"' in scripts
    assert pr["env"]["BASE"] == "origin/${{ github.base_ref }}"
    assert 'scistacks diff --base "$BASE"' in scripts and "GITHUB_STEP_SUMMARY" in scripts
    checkout = next(s for s in pr["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # the merge base needs history


def test_weekly_bump_opens_a_pull_request_with_the_diff(workflows):
    steps = workflows["weekly-bump.yml"]["jobs"]["bump"]["steps"]
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert scripts.index("scistacks bump --all") < scripts.index("scistacks diff --base HEAD")
    assert "gh pr create" in scripts and "--body-file" in scripts


def test_hub_check_is_reusable_by_hub_config_repositories(workflows):
    wf = workflows["hub-check.yml"]
    call = wf["on"]["workflow_call"]
    assert {"configs", "registry"} <= {k for k, v in call["inputs"].items() if v.get("required")}
    assert not any(s.get("required") for s in call["secrets"].values())  # public registries
    commands = [
        " ".join(args[:2]) for _, script in run_scripts(wf) for args in scistacks_calls(script)
    ]
    assert commands == ["hub bump", "hub check"]


def _tool(name: str) -> str | None:
    """``name`` on PATH or beside this Python (a venv's bin/ need not be on PATH)."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else shutil.which(name)


def test_actionlint_finds_nothing(tmp_path):
    """actionlint, with shellcheck on every run: script, reads the workflows as GitHub
    would run them: expressions, action inputs and runtimes, job graph, shell scripts."""
    actionlint, shellcheck = _tool("actionlint"), _tool("shellcheck")
    if not (actionlint and shellcheck):
        missing = "actionlint" if not actionlint else "shellcheck"
        message = f"no {missing}: python -m pip install -e '.[test]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    proc = subprocess.run(
        [actionlint, "-no-color", f"-shellcheck={shellcheck}", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_image_builds_set_up_the_host_first(workflows):
    """demo (and every native build) starts FROM scistacks/debian:bookworm-ARCH, which only
    scripts/setup-host.sh makes: a build job that does not run it cannot build."""
    for name in ("pull-request.yml", "publish.yml"):
        steps = [s.get("run", "") for s in workflows[name]["jobs"]["build"]["steps"]]
        setup = next(i for i, run in enumerate(steps) if "scripts/setup-host.sh" in run)
        build = next(i for i, run in enumerate(steps) if "scistacks build" in run)
        assert setup < build, name


def test_the_bump_pushes_with_the_bump_token(workflows):
    steps = workflows["weekly-bump.yml"]["jobs"]["bump"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    # git push uses the checkout's token: GITHUB_TOKEN's pushes start no pull-request CI
    assert "secrets.SCISTACKS_BUMP_TOKEN" in checkout["with"]["token"]


def test_no_expression_is_pasted_into_a_script(workflows):
    """Inputs and event data reach scripts through env:, never as ${{ }} in run: text
    (script injection); hub-check installs a requirement its caller must name."""
    for name, wf in workflows.items():
        for job_id, script in run_scripts(wf):
            assert "${{" not in script, f"{name}/{job_id}: {script.strip().splitlines()[0]}"
    install = workflows["hub-check.yml"]["on"]["workflow_call"]["inputs"]["install"]
    assert install.get("required") and "default" not in install  # scistacks is not on PyPI
