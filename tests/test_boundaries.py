"""One process boundary per tool: only ``builder/docker.py`` runs docker, only
``builder/git.py`` runs git. Everything else asks them, so errors, stderr and timeouts are
handled in one place each."""

from __future__ import annotations

import ast
from pathlib import Path

BUILDER = Path(__file__).resolve().parent.parent / "builder"

BOUNDARIES = {"docker.py": "docker", "git.py": "git"}

# Modules that start other programs, each never docker or git.
OTHER_PROGRAMS = {
    "publish/cosign.py": "cosign, for signing and verifying",
    "publish/local_registry.py": "Debian's docker-registry binary (its container goes via docker.py)",
    "registry.py": "docker-credential-HELPER, the credential helper protocol",
    "image/repo2docker.py": "repo2docker's own command line",
    "lock/condalock_engine.py": "the conda-lock command",
    "lock/pypi.py": "uv pip compile, the PyPI step of a lock",
    "smoke/scripts/hub_smoke.py": "jupyterhub, inside the image under test",
}

PROCESS_MODULES = {"subprocess", "pty", "multiprocessing"}
# os.exec*, os.spawn*, os.posix_spawn*, os.system, os.popen; asyncio's subprocess functions
PROCESS_CALLS = ("exec", "spawn", "posix_spawn", "system", "popen", "create_subprocess")


def _modules():
    for path in sorted(p for p in BUILDER.rglob("*.py") if p.is_file()):
        yield path.relative_to(BUILDER).as_posix(), ast.parse(path.read_text(), str(path))


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def _process_calls(tree: ast.AST) -> list[str]:
    """``os.execvp(...)``, ``asyncio.create_subprocess_exec(...)``, ``from os import system``..."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("os", "asyncio")
            and node.attr.startswith(PROCESS_CALLS)
        ):
            found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "asyncio"):
            found += [
                f"from {node.module} import {a.name} (line {node.lineno})"
                for a in node.names
                if a.name.startswith(PROCESS_CALLS)
            ]
    return found


def _argvs(tree: ast.AST, programs: set[str]) -> list[str]:
    """List or tuple literals that start with one of ``programs``: an argv."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and first.value in programs:
                found.append(f"[{first.value!r}, ...] (line {node.lineno})")
    return found


def test_the_allow_list_names_real_modules():
    for rel in [*BOUNDARIES, *OTHER_PROGRAMS]:
        assert (BUILDER / rel).is_file(), rel


def test_only_the_boundaries_start_processes():
    problems = []
    for rel, tree in _modules():
        if rel in BOUNDARIES:
            continue
        imported = _imports(tree) & PROCESS_MODULES
        if imported and rel not in OTHER_PROGRAMS:
            problems.append(f"builder/{rel}: imports {', '.join(sorted(imported))}")
        problems += [f"builder/{rel}: {call}" for call in _process_calls(tree)]
    assert not problems, "run docker through builder/docker.py, git through builder/git.py:\n" + (
        "\n".join(problems)
    )


def test_no_docker_or_git_argv_beside_other_programs():
    problems = []
    for rel, tree in _modules():
        if rel in OTHER_PROGRAMS:
            problems += [f"builder/{rel}: {argv}" for argv in _argvs(tree, {"docker", "git"})]
    assert not problems, "\n".join(problems)


def test_each_boundary_runs_only_its_own_program():
    for rel, program in BOUNDARIES.items():
        tree = ast.parse((BUILDER / rel).read_text())
        assert _argvs(tree, {"docker", "git"} - {program}) == [], rel


def test_the_checks_catch_what_they_look_for():
    tree = ast.parse(
        "import subprocess\nimport os\n"
        "subprocess.run(['docker', 'ps'])\nos.execvp('git', ['git', 'log'])\n"
    )
    assert _imports(tree) & PROCESS_MODULES == {"subprocess"}
    assert _process_calls(tree) == ["os.execvp (line 4)"]
    assert _argvs(tree, {"docker", "git"}) == ["['docker', ...] (line 3)", "['git', ...] (line 4)"]
