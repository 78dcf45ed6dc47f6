"""``hub bump`` against a release history in the local registry.

The history (conftest.HISTORY): pangeo 2025.01.15 (lock-111…), 2025.02.03 (lock-222…),
2025.02.03-2 (lock-333…, newest); r-edu 2024.12.01 (lock-444…), 2025.01.20 (lock-555…);
base 2025.01.15 (lock-666…); gpu-ml nothing.
"""

from __future__ import annotations

import pytest

from builder import hub
from builder.errors import HubError
from builder.project import Project
from builder.spec import Catalog

pytestmark = pytest.mark.registry


def bump(world, *configs, **kwargs):
    project = Project.at(world.project)
    return hub.bump(project, Catalog.load(project), configs, [world.registry], **kwargs)


def changed_lines(old: str, new: str) -> dict[int, str]:
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    assert len(a) == len(b)
    return {i + 1: y for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y}


def test_each_style_goes_to_the_newest_release_in_its_own_tag_style(hub_world):
    reg = hub_world.registry
    z2jh = hub_world.config("z2jh-values.yaml")
    cluster = hub_world.config("2i2c-cluster.values.yaml")
    daskhub = hub_world.config("daskhub.values.yaml")
    before = {p: p.read_text() for p in (z2jh, cluster, daskhub)}

    results = bump(hub_world, z2jh, cluster, daskhub)

    assert [r.written for r in results] == [True, True, True]
    assert changed_lines(before[z2jh], z2jh.read_text()) == {
        22: '    tag: "2025.02.03-2"   # a date, so that people can read which release they run\n',
        36: f"        image: '{reg}/r-edu:lock-555555555555'\n",
        40: f"        image: {reg}/base:lock-666666666666   # TODO: pin this before term starts\n",
        # 47: base:2025.01.15 is base's newest release already
    }
    assert changed_lines(before[cluster], cluster.read_text()) == {
        # 23: base:lock-666666666666 is current; 58: pinned by digest, left alone
        47: f'                    image: &pangeo_image "{reg}/pangeo:lock-333333333333"\n',
        52: f"                    image: {reg}/r-edu:2025.01.20\n",
    }
    assert changed_lines(before[daskhub], daskhub.read_text()) == {
        6: "      tag: lock-333333333333\n",
        11: f"        kubespawner_override: {{image: {reg}/pangeo:lock-333333333333, cpu_limit: 2}}\n",
        23: "        tag: lock-333333333333\n",
    }
    again = bump(hub_world, z2jh, cluster, daskhub)
    assert [r.changes for r in again] == [{}, {}, {}]


def test_style_overrides_the_style_of_the_reference(hub_world):
    daskhub = hub_world.config("daskhub.values.yaml")
    before = daskhub.read_text()
    [result] = bump(hub_world, daskhub, style="calver", write=False)
    assert {r.line: tag for r, tag in result.changes.items()} == {
        6: "2025.02.03-2",
        11: "2025.02.03-2",
        23: "2025.02.03-2",
    }
    assert daskhub.read_text() == before  # write=False writes nothing

    z2jh = hub_world.config("z2jh-values.yaml")
    [result] = bump(hub_world, z2jh, style="content", write=False)
    assert {r.line: tag for r, tag in result.changes.items()} == {
        22: "lock-333333333333",
        36: "lock-555555555555",
        40: "lock-666666666666",
        47: "lock-666666666666",
    }


def test_a_release_yanked_in_the_repository_is_skipped(hub_world):
    newest = hub_world.release("pangeo", "2025.02.03-2")
    (hub_world.project / "yanked.yml").write_text(
        "version: 1\n"
        "yanked:\n"
        "  - distribution: pangeo\n"
        "    tag: 2025.02.03-2\n"
        f"    digest: {newest.digest}\n"
        "    reason: loses data when saving zarr v3 with compression\n"
        "    date: 2025-02-05\n"
    )
    daskhub = hub_world.config("daskhub.values.yaml")
    [result] = bump(hub_world, daskhub, write=False)
    # lock-222… is the newest release that is not yanked, and the reference's own tag
    assert {r.line: tag for r, tag in result.changes.items()} == {11: "lock-222222222222"}


def test_no_release_is_an_error_at_the_reference(hub_world, tmp_path):
    values = tmp_path / "gpu.yaml"
    values.write_text(f"singleuser:\n  image:\n    name: {hub_world.registry}/gpu-ml\n    tag: x\n")
    with pytest.raises(HubError, match="no published release") as err:
        bump(hub_world, values)
    assert (err.value.file, err.value.field) == (str(values), "line 4")


def test_cli_prints_a_diff_then_nothing_is_stale(hub_world, run_cli):
    reg = hub_world.registry
    z2jh = hub_world.config("z2jh-values.yaml")
    out = run_cli("hub", "bump", z2jh, "--registry", reg, root=hub_world.project)
    assert out.code == 0, out.stderr
    assert out.stdout.splitlines()[:2] == [f"--- {z2jh}", f"+++ {z2jh}"]
    assert '-    tag: "2025.01.15"   # a date' in out.stdout
    assert '+    tag: "2025.02.03-2"   # a date' in out.stdout
    assert out.err_lines == ["4 references, 3 bumped"]

    text = z2jh.read_text()
    out = run_cli("hub", "bump", "--check", z2jh, "--registry", reg, root=hub_world.project)
    assert (out.code, out.stdout, out.err_lines) == (0, "", ["4 references, all current"])
    assert z2jh.read_text() == text


def test_cli_check_lists_stale_references_and_writes_nothing(hub_world, run_cli):
    reg = hub_world.registry
    cluster = hub_world.config("2i2c-cluster.values.yaml")
    before = cluster.read_bytes()
    out = run_cli("hub", "bump", cluster, "--check", "--registry", reg, root=hub_world.project)
    assert out.code == 1
    assert out.stdout.splitlines() == [
        f"{cluster}:47: {reg}/pangeo:lock-111111111111 -> {reg}/pangeo:lock-333333333333",
        f"{cluster}:52: {reg}/r-edu:2024.12.01 -> {reg}/r-edu:2025.01.20",
    ]
    assert cluster.read_bytes() == before
