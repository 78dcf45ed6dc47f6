"""Lock diffs on real lockfiles: the real family locked at an older state of the snapshot,
committed in a git repository, against the repository's current locks."""

from __future__ import annotations

import datetime as dt
import json
import re
import runpy
import shutil
from pathlib import Path

import pytest
import rattler
import yaml
from git_support import git

from builder import diff
from builder.lock import ChannelMap, lock
from builder.project import Project
from builder.spec import Catalog

REPO = Path(__file__).resolve().parent.parent
FAMILY = ["base", "pangeo", "r-edu", "gpu-ml"]
OLD = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A repository whose HEAD holds the family locked as of OLD and whose working tree
    holds the repository's current locks (so: a weekly bump, before its commit)."""
    snapshot = runpy.run_path(str(REPO / "scripts" / "unpack-snapshot.py"))["unpack"]()
    root = tmp_path_factory.mktemp("history")
    for name in FAMILY:
        shutil.copytree(REPO / "distributions" / name, root / "distributions" / name)
    project = Project.at(root)
    cmap = ChannelMap.from_sources(root, [f"conda-forge={snapshot}"])
    lock(project, Catalog.load(project), FAMILY, cmap, exclude_newer=OLD)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "locks as of 2025-11-01")
    shutil.rmtree(root / "lockfiles")
    shutil.copytree(REPO / "lockfiles", root / "lockfiles", ignore=shutil.ignore_patterns("demo"))
    return root


@pytest.fixture(scope="module")
def diffs(history) -> list[diff.DistributionDiff]:
    project = Project.at(history)
    return diff.diff_tree(project, "HEAD", Catalog.load(project))


# ---------------------------------------------------------------- an independent reading


def packages(text: str) -> dict[str, dict[str, tuple[str, str]]]:
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    out: dict[str, dict[str, tuple[str, str]]] = {p: {} for p in data["metadata"]["platforms"]}
    for p in data["package"]:
        out[p["platform"]][p["name"]] = (p["version"], p["build"])
    return out


def segment_level(old: str, new: str) -> str:
    a, b = re.split(r"[._-]", old), re.split(r"[._-]", new)
    n = max(len(a), len(b))
    a, b = a + ["0"] * (n - len(a)), b + ["0"] * (n - len(b))
    first = next(i for i in range(n) if a[i] != b[i])
    return ["major", "minor", "patch"][min(first, 2)]


def spec_names(name: str) -> set[str]:
    names = set()
    while name:
        spec = yaml.safe_load((REPO / "distributions" / name / "distribution.yml").read_text())
        names |= {re.split(r"[\s<>=!~]", d, maxsplit=1)[0] for d in spec["dependencies"]}
        name = spec.get("extends")
    return names


def expected(history: Path, name: str) -> dict[str, dict[str, dict]]:
    old = packages(git(history, "show", f"HEAD:lockfiles/{name}/conda-lock.yml"))
    new = packages((history / "lockfiles" / name / "conda-lock.yml").read_text())
    out = {}
    for platform in new:
        a, b = old[platform], new[platform]
        kinds: dict[str, dict] = {}
        for n in a.keys() | b.keys():
            if n not in a:
                kinds[n] = {"kind": "added"}
            elif n not in b:
                kinds[n] = {"kind": "removed"}
            elif a[n] != b[n]:
                va, vb = rattler.Version(a[n][0]), rattler.Version(b[n][0])
                if va == vb:
                    kinds[n] = {"kind": "build"}
                else:
                    kinds[n] = {
                        "kind": "upgraded" if vb > va else "downgraded",
                        "level": segment_level(a[n][0], b[n][0]),
                    }
        out[platform] = kinds
    return out


# ---------------------------------------------------------------- the tests


def test_every_change_is_found_and_classified(history, diffs):
    data = json.loads(diff.to_json(diffs))
    order = [d["name"] for d in data["distributions"]]
    assert sorted(order) == sorted(FAMILY)
    assert all(
        order.index(d["parent"]) < order.index(d["name"])
        for d in data["distributions"]
        if d["parent"]
    )
    for dist in data["distributions"]:
        want = expected(history, dist["name"])
        direct = spec_names(dist["name"])
        for plat in dist["platforms"]:
            got = {c["name"]: c for c in plat["changes"]}
            assert got.keys() == want[plat["platform"]].keys(), (dist["name"], plat["platform"])
            for name, change in got.items():
                assert change["kind"] == want[plat["platform"]][name]["kind"], name
                assert change["level"] == want[plat["platform"]][name].get("level"), (name, change)
                assert change["direct"] == (name in direct), name
            kinds = {c["kind"] for c in plat["changes"]}
            assert {"upgraded", "added", "removed", "build"} <= kinds  # a real ten-month refresh
            # direct dependencies first
            flags = [c["direct"] for c in plat["changes"]]
            assert flags == sorted(flags, reverse=True)
    assert data["totals"]["changes"] == sum(
        len(p["changes"]) for d in data["distributions"] for p in d["platforms"]
    )


def test_markdown_is_a_readable_pull_request_body(history, diffs):
    text = diff.to_markdown(diffs)
    assert text.startswith("## Lockfile changes\n")
    assert sorted(ln[4:] for ln in text.splitlines() if ln.startswith("### ")) == sorted(FAMILY)
    # a child lists only what its parent's section does not already show
    assert "also the" in text and "of base above" in text
    assert "<details><summary>" in text and text.count("<details>") == text.count("</details>")
    for block in text.split("**linux-")[1:]:
        table = block.split("<details>")[0]
        rows = [
            ln
            for ln in table.splitlines()
            if ln.startswith("| ") and not ln.startswith("| Package")
        ]
        bold = [ln.startswith("| **") for ln in rows]
        assert bold == sorted(bold, reverse=True)  # direct rows come first
    total = diff.totals(diffs)
    assert (
        text.rstrip()
        .splitlines()[-1]
        .startswith(
            f"**Total:** {total['changes']} changes to {total['packages']} packages in 4 distributions: "
        )
    )
    assert re.search(r"\| \*\*numpy\*\* \| 2\.3\.3 \| [\d.]+ \| minor upgrade \|", text)
    short = diff.to_markdown(diffs, limit=4000)
    assert len(short) <= 4000 and "scistacks diff --format json" in short


def test_cli_diff_against_a_ref_and_between_two_files(history, diffs, run_cli, tmp_path):
    result = run_cli("diff", "--base", "HEAD", "--format", "json", root=history)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(diff.to_json(diffs))

    old = tmp_path / "old.yml"
    old.write_text(git(history, "show", "HEAD:lockfiles/pangeo/conda-lock.yml"))
    result = run_cli(
        "diff",
        old,
        history / "lockfiles" / "pangeo" / "conda-lock.yml",
        "--format",
        "json",
        root=history,
    )
    assert result.code == 0, result.stderr
    pangeo = json.loads(diff.to_json([d for d in diffs if d.name == "pangeo"]))
    assert json.loads(result.stdout)["distributions"] == pangeo["distributions"]


def test_nothing_changed_is_one_short_line(history, tmp_path, run_cli):
    clean = tmp_path / "clean"
    shutil.copytree(history, clean)
    git(clean, "add", "-A")
    git(clean, "commit", "-q", "-m", "bump")
    result = run_cli("diff", "--base", "HEAD", root=clean)
    assert result.code == 0 and result.stdout == "No package changes.\n"


def test_new_and_dropped_distributions(history, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(history, tree)
    git(tree, "checkout", "-q", "--", "lockfiles")  # back to HEAD's locks
    shutil.rmtree(tree / "lockfiles" / "r-edu")
    shutil.copytree(tree / "lockfiles" / "base", tree / "lockfiles" / "base-copy")
    found = {d.name: d for d in diff.diff_tree(Project.at(tree), "HEAD")}
    assert {n: d.status for n, d in found.items()} == {
        "base": "unchanged",
        "base-copy": "added",
        "gpu-ml": "unchanged",
        "pangeo": "unchanged",
        "r-edu": "removed",
    }
    text = diff.to_markdown(list(found.values()))
    assert "New lock: linux-64 (" in text and "Lock removed: linux-64 (" in text
    assert "Unchanged: base, gpu-ml, pangeo." in text


@pytest.mark.parametrize(
    ("old", "new", "level"),
    [
        ("1.2.3", "2.0.0", "major"),
        ("1.2.3", "1.3.0", "minor"),
        ("1.2.3", "1.2.4", "patch"),
        ("2025.9.0", "2025.12.0", "minor"),
        ("3.12", "3.12.1", "patch"),
        ("1.26.4", "2.0.0rc1", "major"),
        ("0.10.6", "0.10.6.post1", "patch"),
        ("1!1.0", "2!0.5", "major"),
    ],
)
def test_version_levels(old, new, level):
    assert diff.level(old, new) == level


@pytest.mark.parametrize(
    "args",
    [("only-one.yml",), ("--base", "HEAD", "a.yml", "b.yml"), ("--base", "no-such-ref")],
)
def test_bad_arguments_are_one_line(history, run_cli, args):
    result = run_cli("diff", *args, root=history)
    assert result.code == 1 and len(result.err_lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
