"""A bad-input corpus through the real CLI, across every file a user writes or damages.

Each case copies the offline ``demo`` project (spec, committed lock, pyproject.toml) into a
folder of its own, damages it, runs ``python -m builder --root DIR ...`` and asserts:

- a non-zero exit, at most 4 lines on stderr, no traceback and no ``internal error``;
- the file, and the field or package, named (in what the command printed);
- every file of the project byte-identical afterwards (a failed command writes nothing).

Cases run side by side in subprocesses (one session fixture runs the selected ones), so
the whole corpus takes seconds. Families: spec, env, lock, hub, yanked, pyproject, record
(the stage records in build/), cli.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC = "distributions/demo/distribution.yml"
LOCK = "lockfiles/demo/conda-lock.yml"
X64 = "lockfiles/demo/conda-linux-64.lock"
ARM = "lockfiles/demo/conda-linux-aarch64.lock"
REG = "localhost:1/scistacks"  # connection refused at once: nothing here needs a registry
DIGEST = "sha256:" + "1" * 64
DEEP = "[" * 3000 + "]" * 3000


@dataclass
class Case:
    id: str
    argv: list[str]
    expect: list[str]  # substrings of stdout + stderr: the file, then the field or package
    files: dict[str, str | bytes | None] = field(default_factory=dict)  # None: delete
    edit: Callable[[Path], None] | None = None
    links: dict[str, str] = field(default_factory=dict)  # path -> (dangling) target

    @property
    def family(self) -> str:
        return self.id.split("/", 1)[0]


# ---------------------------------------------------------------- edits of the demo project


def _sub(rel: str, pattern: str, repl: str, count: int = 1):
    def edit(root: Path) -> None:
        path = root / rel
        text, n = re.subn(pattern, repl, path.read_text(), count=count, flags=re.M)
        assert n, (rel, pattern)
        path.write_text(text)

    return edit


def _spec_with(extra: str):
    """The demo spec with a line appended (keys the demo spec does not have)."""

    def edit(root: Path) -> None:
        path = root / SPEC
        path.write_text(path.read_text() + extra)

    return edit


def _blocks(root: Path) -> tuple[str, list[str]]:
    head, *blocks = re.split(r"(?m)^(?=- name: )", (root / LOCK).read_text())
    return head, blocks


def _drop(name: str, platform: str):
    def edit(root: Path) -> None:
        head, blocks = _blocks(root)
        kept = [
            b for b in blocks if not (f"- name: {name}\n" in b and f"platform: {platform}\n" in b)
        ]
        assert len(kept) == len(blocks) - 1
        (root / LOCK).write_text(head + "".join(kept))

    return edit


def _truncate(root: Path) -> None:
    """Cut at a package boundary, inside the conda entries (the PyPI ones come last)."""
    head, blocks = _blocks(root)
    last_conda = max(i for i, b in enumerate(blocks) if "manager: conda\n" in b)
    (root / LOCK).write_text(head + "".join(blocks[:last_conda]))


def _truncate_last(root: Path) -> None:
    head, blocks = _blocks(root)
    (root / LOCK).write_text(head + "".join(blocks[:-1]))  # the last PyPI entry gone


def _duplicate_last(root: Path) -> None:
    """The last conda entry twice."""
    head, blocks = _blocks(root)
    i = max(i for i, b in enumerate(blocks) if "manager: conda\n" in b)
    (root / LOCK).write_text(head + "".join([*blocks[: i + 1], blocks[i], *blocks[i + 1 :]]))


def _explicit(rel: str, change: Callable[[list[str]], list[str]]):
    def edit(root: Path) -> None:
        path = root / rel
        lines = path.read_text().splitlines()
        path.write_text("\n".join(change(lines)) + "\n")

    return edit


def _last_package(lines: list[str]) -> int:
    """The index of the last package line (comment lines, such as '# pip', come after)."""
    return max(i for i, line in enumerate(lines) if line and not line.startswith("#"))


def _flip_last_char(lines: list[str]) -> list[str]:
    i = _last_package(lines)
    last = lines[i]
    return [*lines[:i], last[:-1] + ("0" if last[-1] != "0" else "1"), *lines[i + 1 :]]


def _drop_last_package(lines: list[str]) -> list[str]:
    i = _last_package(lines)
    return [*lines[:i], *lines[i + 1 :]]


def _env(text: str) -> dict[str, str]:
    return {"environment.yml": text}


HUB_OK = "singleuser:\n  image:\n    name: localhost:1/scistacks/demo\n    tag: 2025.01.15\n"
YANK_ENTRY = (
    "version: 1\nyanked:\n  - distribution: demo\n    tag: 2025.01.01\n"
    f"    digest: {DIGEST}\n    reason: broken\n    date: 2025-01-02\n"
)


def _yanked(text: str) -> dict[str, str]:
    return {"yanked.yml": text, "values.yaml": HUB_OK}


def _pip(*requirements: str, index: str | None = None, python: bool = True):
    """The demo spec with a pip: section, its PyPI index the test index folder (mapped),
    or ``index`` (unmapped)."""

    def edit(root: Path) -> None:
        from pypi_index import TEST_INDEX, make_index_folder

        lines = "".join(f"  - {r!r}\n" for r in requirements)
        _sub(SPEC, r"^pip:\n(?:  - .*\n)+", f"pip:\n{lines}")(root)  # demo's own pip: section
        if not python:
            _sub(SPEC, r"^pip_python: .*\n", "")(root)
        make_index_folder(root / "pypi-index")
        mapped = f'[tool.scistacks.pypi-index-map]\n"{TEST_INDEX}" = "pypi-index"\n'
        toml = f'{TOML}\n[tool.scistacks]\npypi-index = "{index or TEST_INDEX}"\n'
        (root / "pyproject.toml").write_text(toml + ("" if index else mapped))

    return edit


HUB_CHECK = ["hub", "check", "values.yaml", "--registry", REG]
HUB_BUMP = ["hub", "bump", "values.yaml", "--registry", REG]
NEW = ["new", "imported", "--from", "environment.yml"]
FORCE = ["new", "demo", "--force", "--from", "environment.yml"]
TOML = '[tool.scistacks.channel-map]\nscistacks-demo = "distributions/demo/channel"\n'
# demo's pip: section reads its own index, a folder of the demo
DEMO_INDEX = "https://pypi.scistacks-demo.invalid/simple"
PYPI_TOML = (
    f'[tool.scistacks]\npypi-index = "{DEMO_INDEX}"\n'
    f'[tool.scistacks.pypi-index-map]\n"{DEMO_INDEX}" = "distributions/demo/wheels"\n'
)

CASES = [
    # ------------------------------------------------------------ specs (validate, lock)
    Case(
        "spec/dangling-symlink",
        ["validate"],
        ["distributions/ghost/distribution.yml", "symbolic link"],
        links={"distributions/ghost/distribution.yml": "nowhere.yml"},
    ),
    Case(
        "spec/dangling-symlink-lock-all",
        ["lock", "--all"],
        ["distributions/ghost/distribution.yml", "symbolic link"],
        links={"distributions/ghost/distribution.yml": "nowhere.yml"},
    ),
    Case(
        "spec/dangling-folder-symlink",
        ["validate"],
        ["distributions/ghost", "symbolic link"],
        links={"distributions/ghost": "/nonexistent-folder"},
    ),
    Case(
        "spec/missing-notebook",
        ["validate"],
        [SPEC, "notebooks[1]", "call-tool.ipynb"],
        files={"distributions/demo/notebooks/call-tool.ipynb": None},
    ),
    Case(
        "spec/cuda-range",
        ["validate"],
        [SPEC, "virtual_packages.__cuda", "range"],
        edit=_spec_with('virtual_packages:\n  __cuda: ">=12"\n'),
    ),
    Case(
        "spec/cuda-glob",
        ["validate"],
        [SPEC, "virtual_packages.__cuda"],
        edit=_spec_with('virtual_packages:\n  __cuda: "12.*"\n'),
    ),
    Case(
        "spec/unknown-virtual",
        ["validate"],
        [SPEC, "virtual_packages.__cudaa", "unknown virtual package"],
        edit=_spec_with('virtual_packages:\n  __cudaa: "12.0"\n'),
    ),
    Case(
        "spec/virtual-not-a-version",
        ["validate"],
        [SPEC, "virtual_packages.__glibc"],
        edit=_spec_with('virtual_packages:\n  __glibc: "2..28"\n'),
    ),
    Case(
        "spec/deeply-nested",
        ["validate"],
        [SPEC, "nested too deeply"],
        edit=_spec_with(f"description2: {DEEP}\n"),
    ),
    Case(
        "spec/deeply-nested-lock",
        ["lock", "demo"],
        [SPEC, "nested too deeply"],
        edit=_spec_with(f"x: {DEEP}\n"),
    ),
    Case(
        "spec/nodefaults-channel",
        ["validate"],
        [SPEC, "channels[1]", "nodefaults"],
        edit=_sub(SPEC, r"^  - scistacks-demo$", "  - scistacks-demo\n  - nodefaults"),
    ),
    Case(
        "spec/channel-with-space",
        ["validate"],
        [SPEC, "channels[0]"],
        edit=_sub(SPEC, r"^  - scistacks-demo$", "  - scistacks demo"),
    ),
    Case(
        "spec/pin-three-levels-down",
        ["validate"],
        ["distributions/leaf/distribution.yml: dependencies[0]", SPEC],
        files={
            "distributions/mid/distribution.yml": "name: mid\nextends: demo\nplatforms: [linux-64]\ndependencies: ['demo-data >=0.5']\n",
            "distributions/leaf/distribution.yml": "name: leaf\nextends: mid\ndependencies: ['demo-data <1.0']\n",
        },
    ),
    Case(
        "spec/chain-disagrees-all-together",
        ["validate"],
        ["distributions/leaf/distribution.yml: dependencies[0]"],
        files={
            "distributions/mid/distribution.yml": "name: mid\nextends: demo\ndependencies: ['demo-tool 1.*|2.*']\n",
            "distributions/leaf/distribution.yml": "name: leaf\nextends: mid\ndependencies: ['demo-tool 2.*|3.*', 'demo-stack']\n",
        },
        edit=_sub(SPEC, r"^  - demo-tool$", "  - demo-tool 1.*|3.*"),
    ),
    Case(
        "spec/virtual-in-dependencies-of-child",
        ["lock", "child"],
        ["distributions/child/distribution.yml", "dependencies[0]", "virtual"],
        files={
            "distributions/child/distribution.yml": "name: child\nextends: demo\ndependencies: [__cuda]\n"
        },
    ),
    Case(
        "spec/validate-named-dangling",
        ["validate", "ghost"],
        ["distributions/ghost/distribution.yml"],
        links={"distributions/ghost/distribution.yml": "../demo/missing.yml"},
    ),
    # ------------------------------------------------------------ environment.yml imports
    Case(
        "env/force-keeps-the-distribution",
        FORCE,
        ["environment.yml: dependencies[1]", "listed twice"],
        files=_env("dependencies:\n  - demo-stack\n  - demo-stack >=1\n"),
    ),
    Case(
        "env/force-virtual-package",
        FORCE,
        ["environment.yml: dependencies[0]", "virtual"],
        files=_env("dependencies:\n  - __glibc\n"),
    ),
    Case(
        "env/force-unknown-key",
        FORCE,
        ["environment.yml: channel", "unknown key"],
        files=_env("channel: [conda-forge]\ndependencies: [python]\n"),
    ),
    Case(
        "env/selector-some-platforms",
        NEW,
        ["environment.yml: dependencies[1]", "linux64"],
        files=_env(
            "platforms: [linux-64, osx-arm64]\ndependencies:\n  - python\n  - libgcc  # [linux64]\n"
        ),
    ),
    Case(
        "env/selector-unknown-word",
        NEW,
        ["environment.yml: dependencies[1]", "linuxx"],
        files=_env("dependencies:\n  - python\n  - clang  # [linuxx]\n"),
    ),
    Case(
        "env/selector-syntax",
        NEW,
        ["environment.yml: dependencies[0]", "selector"],
        files=_env("dependencies:\n  - clang  # [linux and]\n"),
    ),
    Case(
        "env/unknown-platform",
        NEW,
        ["environment.yml: platforms[1]", "linux-arm64"],
        files=_env("platforms: [linux-64, linux-arm64]\ndependencies: [python]\n"),
    ),
    Case(
        "env/platforms-a-string",
        NEW,
        ["environment.yml: platforms"],
        files=_env("platforms: linux-64\ndependencies: [python]\n"),
    ),
    Case(
        "env/platform-the-parent-lacks",
        [*NEW, "--extends", "demo"],
        ["environment.yml: platforms", "osx-64"],
        files=_env("platforms: [linux-64, osx-64]\ndependencies: [python]\n"),
    ),
    Case(
        "env/contradicts-parent-pin",
        [*NEW, "--extends", "demo"],
        ["environment.yml: dependencies[0]", SPEC],
        files=_env("dependencies:\n  - demo-data >=2\n"),
    ),
    Case(
        "env/deeply-nested",
        NEW,
        ["environment.yml", "nested too deeply"],
        files=_env(f"dependencies: {DEEP}\n"),
    ),
    Case(
        "env/pip-entry-a-mapping",
        NEW,
        ["environment.yml: dependencies[1].pip[0]"],
        files=_env("dependencies:\n  - pip\n  - pip:\n      - {requests: 2}\n"),
    ),
    Case(
        "env/unclosed-bracket",
        NEW,
        ["environment.yml: dependencies[0]"],
        files=_env("dependencies:\n  - 'numpy[version=\">=2\"'\n"),
    ),
    Case(
        "env/listed-twice-other-spelling",
        NEW,
        ["environment.yml: dependencies[1]", "python"],
        files=_env("dependencies:\n  - python=3.12\n  - python==3.12.1\n"),
    ),
    Case("env/missing-file", ["new", "imported", "--from", "nope.yml"], ["nope.yml", "not found"]),
    # ------------------------------------------------------------ lockfiles
    Case(
        "lock/truncated-check",
        ["lock", "--check"],
        [LOCK, "package demo-stack (linux-aarch64)", "demo-tool"],
        edit=_truncate,
    ),
    Case("lock/truncated-context", ["context", "demo"], [LOCK, "demo-tool"], edit=_truncate),
    Case(
        "lock/truncated-pypi-check",
        ["lock", "--check"],
        [LOCK, "pip requirement demo-pyutil", "linux-aarch64"],
        edit=_truncate_last,
    ),
    Case("lock/truncated-bump", ["bump", "demo", "demo-data"], [LOCK, "demo-tool"], edit=_truncate),
    Case(
        "lock/direct-dependency-gone",
        ["lock", "--check", "demo"],
        [LOCK, "demo-stack", "linux-64", SPEC],
        edit=_drop("demo-stack", "linux-64"),
    ),
    Case(
        "lock/dependency-gone-context",
        ["context", "demo"],
        [LOCK, "demo-data"],
        edit=_drop("demo-data", "linux-64"),
    ),
    Case("lock/explicit-deleted", ["lock", "--check"], [ARM, "missing"], files={ARM: None}),
    Case("lock/explicit-deleted-context", ["context", "demo"], [X64, "missing"], files={X64: None}),
    Case(
        "lock/explicit-md5-edited",
        ["lock", "--check"],
        [X64, "md5"],
        edit=_explicit(X64, _flip_last_char),
    ),
    Case(
        "lock/explicit-line-removed",
        ["lock", "--check"],
        [X64, "missing"],
        edit=_explicit(X64, _drop_last_package),
    ),
    Case(
        "lock/explicit-extra-line",
        ["lock", "--check"],
        [X64, "demo-extra-1.0-0.tar.bz2"],
        edit=_explicit(
            X64,
            lambda lines: [
                *lines,
                "https://conda.anaconda.org/scistacks-demo/noarch/demo-extra-1.0-0.tar.bz2#"
                + "0" * 32,
            ],
        ),
    ),
    Case(
        "lock/explicit-not-explicit",
        ["lock", "--check"],
        [ARM, "@EXPLICIT"],
        files={ARM: "https://example.org/x-1-0.conda\n"},
    ),
    Case(
        "lock/sha256-too-long",
        ["lock", "--check"],
        [LOCK, "package demo-data (linux-64): hash.sha256"],
        edit=_sub(LOCK, r"sha256: ([0-9a-f]{64})", r"sha256: \1ab"),
    ),
    Case(
        "lock/sha256-bump",
        ["bump", "demo", "demo-data"],
        [LOCK, "package demo-data (linux-64): hash.sha256"],
        edit=_sub(LOCK, r"sha256: [0-9a-f]{64}", "sha256: nothex"),
    ),
    Case(
        "lock/md5-short",
        ["lock", "--check"],
        [LOCK, "package demo-data (linux-64): hash.md5"],
        edit=_sub(LOCK, r"md5: ([0-9a-f]{30})[0-9a-f]{2}", r"md5: \1"),
    ),
    Case(
        "lock/md5-uppercase-context",
        ["context", "demo"],
        [LOCK, "hash.md5"],
        edit=_sub(LOCK, r"md5: [0-9a-f]{32}", "md5: " + "A" * 32),
    ),
    Case(
        "lock/url-not-a-package",
        ["lock", "--check"],
        [LOCK, "package demo-data (linux-64): url"],
        edit=_sub(LOCK, r"url: (\S+)\.tar\.bz2", r"url: \1.zip"),
    ),
    Case(
        "lock/package-twice",
        ["lock", "--check"],
        [LOCK, "demo-tool", "twice"],
        edit=_duplicate_last,
    ),
    Case(
        "lock/version-2",
        ["lock", "--check"],
        [LOCK, "version"],
        edit=_sub(LOCK, r"^version: 1$", "version: 2"),
    ),
    Case("lock/a-list", ["context", "demo"], [LOCK, "mapping"], files={LOCK: "- 1\n- 2\n"}),
    Case("lock/empty", ["lock", "--check"], [LOCK], files={LOCK: ""}),
    Case(
        "lock/invalid-yaml",
        ["bump", "demo", "demo-data"],
        [LOCK, "line"],
        files={LOCK: "version: 1\nmetadata: [\n"},
    ),
    Case(
        "lock/unlisted-platform",
        ["lock", "--check"],
        [LOCK, "osx-64"],
        edit=_sub(LOCK, r"^  platform: linux-aarch64$", "  platform: osx-64"),
    ),
    Case("lock/missing-conda-lock-yml", ["context", "demo"], [LOCK, "missing"], files={LOCK: None}),
    # ------------------------------------------------------------ hub configs
    Case(
        "hub/duplicate-key",
        HUB_CHECK,
        ["values.yaml: line 5", "duplicate key 'tag'"],
        files={"values.yaml": HUB_OK + "    tag: latest\n"},
    ),
    Case(
        "hub/duplicate-key-bump",
        HUB_BUMP,
        ["values.yaml: line 3", "duplicate key 'singleuser'"],
        files={
            "values.yaml": "singleuser: {}\nx: 1\nsingleuser:\n  image: localhost:1/scistacks/demo:latest\n"
        },
    ),
    Case(
        "hub/malformed-digest-check",
        HUB_CHECK,
        ["values.yaml:1", "malformed digest"],
        files={"values.yaml": "image: localhost:1/scistacks/demo@sha256:abc\n"},
    ),
    Case(
        "hub/malformed-digest-bump",
        HUB_BUMP,
        ["values.yaml: line 1", "malformed digest"],
        files={"values.yaml": "image: localhost:1/scistacks/demo@sha256:abc\n"},
    ),
    Case(
        "hub/malformed-tag-bump",
        HUB_BUMP,
        ["values.yaml: line 4", "malformed tag"],
        files={"values.yaml": HUB_OK.replace("2025.01.15", "-2025")},
    ),
    Case(
        "hub/latest-registry-down",
        HUB_CHECK,
        ["values.yaml:4", "mutable tag", "localhost:1 does not answer"],
        files={"values.yaml": HUB_OK.replace("2025.01.15", "latest")},
    ),
    Case(
        "hub/yanked-registry-down",
        HUB_CHECK,
        ["values.yaml:4", "yanked on 2025-01-02", "does not answer"],
        files={"values.yaml": HUB_OK.replace("2025.01.15", "2025.01.01"), "yanked.yml": YANK_ENTRY},
    ),
    Case(
        "hub/deeply-nested",
        HUB_CHECK,
        ["values.yaml", "nested too deeply"],
        files={"values.yaml": f"x: {DEEP}\n"},
    ),
    Case(
        "hub/binary", HUB_CHECK, ["values.yaml", "binary"], files={"values.yaml": b"\x00\x01image"}
    ),
    Case(
        "hub/a-directory",
        ["hub", "check", "distributions", "--registry", REG],
        ["distributions", "directory"],
    ),
    Case(
        "hub/registry-with-tag",
        ["hub", "check", "values.yaml", "--registry", "localhost:1/scistacks:latest"],
        ["--registry"],
        files={"values.yaml": HUB_OK},
    ),
    # ------------------------------------------------------------ yanked.yml
    Case(
        "yanked/impossible-date",
        HUB_CHECK,
        ["yanked.yml: line 7", "day is out of range"],
        files=_yanked(YANK_ENTRY.replace("2025-01-02", "2025-02-30")),
    ),
    Case(
        "yanked/impossible-date-yank",
        ["yank", "demo:2025.01.01", "--reason", "x", "--registry", REG],
        ["yanked.yml: line 7"],
        files={"yanked.yml": YANK_ENTRY.replace("2025-01-02", "2025-13-01")},
    ),
    Case(
        "yanked/malformed-digest",
        HUB_CHECK,
        ["yanked.yml: yanked.0.digest"],
        files=_yanked(YANK_ENTRY.replace(DIGEST, "sha256:abc")),
    ),
    Case(
        "yanked/unknown-key",
        HUB_CHECK,
        ["yanked.yml: yanked.0.why"],
        files=_yanked(YANK_ENTRY + "    why: typo\n"),
    ),
    Case(
        "yanked/newer-version",
        HUB_CHECK,
        ["yanked.yml: version"],
        files=_yanked(YANK_ENTRY.replace("version: 1", "version: 7")),
    ),
    Case(
        "yanked/deeply-nested",
        HUB_CHECK,
        ["yanked.yml", "nested too deeply"],
        files=_yanked(f"version: 1\nyanked: {DEEP}\n"),
    ),
    Case(
        "yanked/not-a-list",
        HUB_CHECK,
        ["yanked.yml: yanked"],
        files=_yanked("version: 1\nyanked: 3\n"),
    ),
    Case(
        "yanked/duplicate-key",
        HUB_CHECK,
        ["yanked.yml: line 8", "duplicate key"],
        files=_yanked(YANK_ENTRY + "    reason: twice\n"),
    ),
    # ------------------------------------------------------------ pip: (the PyPI step)
    Case(
        "lock/pip-unsatisfiable",
        ["lock", "demo"],
        [SPEC, "pip[1]", "'tinyver >5'", "cannot be resolved"],
        edit=_pip("demo-pyutil", "tinyver >5"),
    ),
    Case(
        "lock/pip-conflicts-with-conda",
        ["lock", "demo"],
        [SPEC, "pip[0]", "wants-new-pylib", "conda installs demo-pylib 0.2.0"],
        edit=_pip("wants-new-pylib"),
    ),
    Case(
        "lock/pip-sdist-only",
        ["lock", "demo"],
        [SPEC, "pip[0]", "only-sdist", "--allow-sdist"],
        edit=_pip("only-sdist"),
    ),
    Case(
        "lock/pip-index-not-answering",
        ["lock", "demo"],
        [SPEC, "pip[0]", "demo-pyutil", "http://127.0.0.1:9/simple does not answer"],
        edit=_pip("demo-pyutil", index="http://127.0.0.1:9/simple"),
    ),
    Case(
        "lock/pip-malformed-pep508",
        ["lock", "demo"],
        [SPEC, "pip[1]", "invalid pip requirement 'demo-pyutil >=='"],
        edit=_pip("tinyver", "demo-pyutil >=="),
    ),
    Case(
        "lock/pip-without-a-python",
        ["lock", "demo"],
        [SPEC, "pip: needs a Python", "pip_python"],
        edit=_pip("demo-pyutil", python=False),
    ),
    # ------------------------------------------------------------ pyproject.toml settings
    Case(
        "pyproject/channel-map-a-string",
        ["lock", "demo"],
        ["pyproject.toml: [tool.scistacks] channel-map"],
        files={
            "pyproject.toml": '[tool.scistacks]\nchannel-map = "scistacks-demo=distributions/demo/channel"\n'
        },
    ),
    Case(
        "pyproject/scistacks-a-string",
        ["lock", "demo"],
        ["pyproject.toml: tool.scistacks"],
        files={"pyproject.toml": '[tool]\nscistacks = "yes"\n'},
    ),
    Case(
        "pyproject/mirror-a-number",
        ["bump", "demo", "demo-data"],
        ["pyproject.toml: [tool.scistacks.channel-map] scistacks-demo"],
        files={"pyproject.toml": "[tool.scistacks.channel-map]\nscistacks-demo = 3\n"},
    ),
    Case(
        "pyproject/invalid-toml",
        ["lock", "demo"],
        ["pyproject.toml", "TOML"],
        files={"pyproject.toml": TOML + "[[broken\n"},
    ),
    Case(
        "pyproject/mirror-missing",
        ["lock", "demo"],
        ["channel-map", "not a folder"],
        files={"pyproject.toml": TOML.replace("distributions/demo/channel", "no/such/folder")},
    ),
    # ------------------------------------------------------------ stage records (build/)
    Case(
        "record/runner-image-record-truncated",
        ["collect", "run"],
        ["run/build/images/demo.json", "not valid JSON", "scistacks build demo"],
        files={"run/build/images/demo.json": '{"distribution": "demo", "platforms": {'},
    ),
    Case(
        "record/image-record-unknown-version",
        ["collect", "run"],
        ["build/images/demo.json: version", "unknown version 2"],
        files={
            "build/images/demo.json": '{"version": 2, "distribution": "demo"}',
            "run/build/images/demo.json": "{}",
        },
    ),
    Case(
        "record/runner-smoke-results-wrong-type",
        ["collect", "run"],
        ["run/build/smoke/demo/results.json: passed", "valid boolean"],
        files={
            "run/build/smoke/demo/results.json": (
                '{"distribution": "demo", "passed": "yes", "lock_hash": null, "duration": 1,'
                ' "platforms": {}}'
            )
        },
    ),
    Case(
        "record/publish-record-truncated",
        ["profiles", "--registry", REG, "--digest", "demo"],
        ["build/publish/demo.json", "not valid JSON", "scistacks publish demo"],
        files={"build/publish/demo.json": '{"distribution": "demo", "digest": "sha'},
    ),
    Case(
        "record/publish-record-wrong-type",
        ["profiles", "--registry", REG, "demo"],
        ["build/publish/demo.json: digest", "valid string"],
        files={
            "build/publish/demo.json": (
                '{"distribution": "demo", "repository": "localhost:1/scistacks/demo", "digest": 5,'
                ' "lock_hash": "0", "immutable": [], "mutable": [], "platforms": {},'
                ' "artifacts": {}, "signed": {}}'
            )
        },
    ),
    Case(
        "record/publish-record-missing-field",
        ["profiles", "--registry", REG, "--attach", "demo"],
        ["build/publish/demo.json: repository", "required field is missing"],
        files={"build/publish/demo.json": f'{{"distribution": "demo", "digest": "{DIGEST}"}}'},
    ),
    Case(
        "record/publish-record-of-another-distribution",
        ["profiles", "--registry", REG, "--digest", "demo"],
        ["build/publish/demo.json: distribution", "'other'"],
        files={"build/publish/demo.json": '{"distribution": "other"}'},
    ),
    # ------------------------------------------------------------ CLI arguments
    Case(
        "cli/collect-missing-folder", ["collect", "no-such-run"], ["no-such-run", "no such folder"]
    ),
    Case("cli/collect-not-a-run", ["collect", "distributions"], ["distributions", "build/"]),
    Case(
        "cli/yank-latest",
        ["yank", "demo:latest", "--reason", "x", "--registry", REG],
        ["NAME:TAG", "mutable tag"],
    ),
    Case("cli/yank-no-tag", ["yank", "demo", "--reason", "x", "--registry", REG], ["NAME:TAG"]),
    Case(
        "cli/yank-replaced-by-latest",
        ["yank", "demo:2025.01.01", "--reason", "x", "--replaced-by", "latest", "--registry", REG],
        ["--replaced-by"],
    ),
    Case("cli/lock-unknown-distribution", ["lock", "nope"], ["nope", "unknown distribution"]),
    Case(
        "cli/context-bad-platform",
        ["context", "demo", "--platform", "linux/sparc"],
        ["--platform", "linux/sparc"],
    ),
    Case(
        "cli/exclude-newer-bad-date",
        ["lock", "demo", "--exclude-newer", "2025-02-30"],
        ["--exclude-newer"],
    ),
    Case(
        "cli/channel-map-no-equals",
        ["lock", "demo", "--channel-map", "scistacks-demo"],
        ["--channel-map"],
    ),
    Case("cli/bump-unknown-package", ["bump", "demo", "numpy"], ["numpy", "not in the lock"]),
]

FAMILIES = {c.family for c in CASES}


# ---------------------------------------------------------------- running the cases


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    changed: list[str]


def _snapshot(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                out[rel] = path.read_bytes()
    return out


def _prepare(case: Case, root: Path) -> None:
    shutil.copytree(REPO / "distributions" / "demo", root / "distributions" / "demo", symlinks=True)
    shutil.copytree(REPO / "lockfiles" / "demo", root / "lockfiles" / "demo")
    (root / "pyproject.toml").write_text(TOML + PYPI_TOML)
    for rel, content in case.files.items():
        path = root / rel
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    for rel, target in case.links.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    if case.edit:
        case.edit(root)


def _run(case: Case, root: Path) -> Outcome:
    _prepare(case, root)
    before = _snapshot(root)
    env = {k: v for k, v in os.environ.items() if k not in ("SCISTACKS_ROOT", "SCISTACKS_DEBUG")}
    env.pop("SCISTACKS_CHANNEL_MAP", None)
    proc = subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(root), *case.argv],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=120,
    )
    after = _snapshot(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return Outcome(proc.returncode, proc.stdout, proc.stderr, changed)


@pytest.fixture(scope="session")
def outcomes(request, tmp_path_factory) -> dict[str, Outcome]:
    """Every selected case, run side by side (each in a project folder of its own)."""
    wanted = {
        item.callspec.params["case"].id
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_bad_input" and hasattr(item, "callspec")
    }
    selected = [c for c in CASES if c.id in wanted]
    base = tmp_path_factory.mktemp("bad-input")
    roots = {c.id: base / c.id.replace("/", "--") for c in selected}
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2) * 2)) as pool:
        results = pool.map(lambda c: _run(c, roots[c.id]), selected)
        return {c.id: r for c, r in zip(selected, results, strict=True)}


def test_the_corpus_is_big_and_covers_every_family():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    assert {"spec", "env", "lock", "hub", "yanked", "pyproject", "record", "cli"} == FAMILIES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, outcomes):
    out = outcomes[case.id]
    said = out.stdout + out.stderr
    assert out.code != 0, f"exit 0: {said!r}"
    assert "Traceback" not in said
    assert "internal error" not in said
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) <= 4, lines
    assert lines or out.stdout.strip(), "nothing said"
    for wanted in case.expect:
        assert wanted in said, f"{wanted!r} not in {said!r}"
    assert out.changed == [], f"files changed: {out.changed}"
