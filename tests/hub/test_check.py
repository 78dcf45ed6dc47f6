"""``hub check`` against the release history of conftest.HISTORY, and the bad input of
``hub check`` / ``hub bump`` through the real CLI."""

from __future__ import annotations

import pytest
from hub.conftest import CONFIGS

EVERY_PROBLEM = """\
# one reference of each kind hub check knows about
singleuser:
  image:
    name: {reg}/pangeo
    tag: 2025.02.03-2                          # yanked
  profileList:
    - display_name: Rolling
      kubespawner_override:
        image: {reg}/pangeo:latest             # mutable, and points at the yanked release
    - display_name: R, by version
      kubespawner_override:
        image: {reg}/r-edu:r-4.4               # mutable
    - display_name: R, a tag that never was
      kubespawner_override:
        image: {reg}/r-edu:2023.01.01          # does not exist
    - display_name: Python
      kubespawner_override:
        image: {reg}/base                      # no tag at all
    - display_name: R, last term
      kubespawner_override:
        image: {reg}/r-edu:2024.12.01          # fine: old, not yanked
    - display_name: Python, pinned
      kubespawner_override:
        image: "{reg}/base:lock-666666666666"  # fine: newest
    - display_name: Pangeo, audited
      kubespawner_override:
        image: "{reg}/pangeo@{audited}"        # fine: pinned by digest
    - display_name: Pangeo, a digest that never was
      kubespawner_override:
        image: "{reg}/pangeo@sha256:{zeros}"
"""

YANKED = """\
# Yanked tags (see scistacks yank)
version: 1
yanked:
  - distribution: pangeo
    tag: 2025.02.03-2
    digest: {digest}
    reason: zarr v3 writes with blosc compression lose data
    date: 2025-02-05
    replaced_by: 2025.02.03
"""


@pytest.mark.registry
def test_every_problem_with_file_and_line(hub_world, run_cli, tmp_path):
    reg = hub_world.registry
    yanked = hub_world.release("pangeo", "2025.02.03-2")
    (hub_world.project / "yanked.yml").write_text(YANKED.format(digest=yanked.digest))
    values = tmp_path / "values.yaml"
    audited = hub_world.release("pangeo", "2025.01.15").digest
    values.write_text(EVERY_PROBLEM.format(reg=reg, audited=audited, zeros="0" * 64))
    before = values.read_bytes()

    out = run_cli("hub", "check", values, "--registry", reg, root=hub_world.project)

    yank = (
        "is yanked on 2025-02-05 (2025.02.03-2): zarr v3 writes with blosc compression lose "
        f"data; replaced by {reg}/pangeo:2025.02.03"
    )
    pin = "pin an immutable tag (scistacks hub bump does)"
    assert out.code == 1
    assert out.stdout.splitlines() == [
        f"{values}:5: {reg}/pangeo:2025.02.03-2 {yank}",
        f"{values}:9: {reg}/pangeo:latest is a mutable tag: {pin}",
        f"{values}:9: {reg}/pangeo:latest {yank}",
        f"{values}:12: {reg}/r-edu:r-4.4 is a mutable tag: {pin}",
        f"{values}:15: {reg}/r-edu:2023.01.01 does not exist in the registry",
        f"{values}:18: {reg}/base has no tag, which means latest: {pin}",
        f"{values}:30: {reg}/pangeo@sha256:{'0' * 64} does not exist in the registry",
    ]
    assert out.err_lines == [
        f"{values}:21: note: {reg}/r-edu:2024.12.01 is not the newest release (2025.01.20)",
        f"{values}:27: note: {reg}/pangeo is pinned by digest",
    ]
    assert values.read_bytes() == before


@pytest.mark.registry
def test_all_pinned_and_current(hub_world, run_cli):
    cluster = hub_world.config("2i2c-cluster.values.yaml")
    out = run_cli("hub", "check", cluster, "--registry", hub_world.registry, root=hub_world.project)
    assert out.code == 0, out.stdout
    # fine but not the newest: for information only (hub bump moves them)
    assert out.stdout == "4 references, all current/pinned\n"
    assert [line.split(": ", 1)[0] for line in out.err_lines] == [
        f"{cluster}:47",
        f"{cluster}:52",
        f"{cluster}:58",
    ]


@pytest.mark.registry
def test_hub_admins_need_no_scistacks_checkout(hub_world, run_cli, tmp_path):
    reg = hub_world.registry
    yanked = run_cli(
        "yank", "pangeo:2025.02.03", "--reason", "broken proj data", "--registry", reg,
        root=hub_world.project,
    )  # fmt: skip
    assert yanked.code == 0, yanked.stderr
    elsewhere = tmp_path / "hub-repo"  # a hub config repository: no distributions/
    elsewhere.mkdir()
    values = elsewhere / "values.yaml"
    values.write_text(
        "singleuser:\n"
        "  image:\n"
        f"    name: {reg}/pangeo\n"
        "    tag: 2025.02.03\n"
        "  profileList:\n"
        "    - display_name: ours, not in any catalog this machine has\n"
        "      kubespawner_override:\n"
        f"        image: {reg}/climate-course:2024.09.01\n"
    )
    out = run_cli("hub", "check", "values.yaml", "--registry", reg, cwd=elsewhere)
    assert out.code == 1
    lines = out.stdout.splitlines()
    # the yank is known from the registry's advisory alone
    assert lines[0].startswith(f"values.yaml:4: {reg}/pangeo:2025.02.03 is yanked on ")
    assert lines[0].endswith("(2025.02.03): broken proj data")
    # without a catalog, every image directly in the namespace is ours
    assert (
        lines[1] == f"values.yaml:8: {reg}/climate-course:2024.09.01 does not exist in the registry"
    )
    assert len(lines) == 2


# ---------------------------------------------------------------- bad input, through the CLI


def bad_input(run_cli, project, *args, file=None):
    before = file.read_bytes() if file is not None and file.exists() else None
    out = run_cli(*args, root=project)
    assert out.code == 1, out
    assert len(out.err_lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    if file is not None:
        assert (file.read_bytes() if file.exists() else None) == before
    return out.err_lines[0]


def test_not_yaml(hub_project, run_cli, tmp_path):
    path = tmp_path / "values.yaml"
    path.write_bytes((CONFIGS / "not-yaml.yaml").read_bytes())
    line = bad_input(run_cli, hub_project, "hub", "bump", path, file=path)
    assert line.startswith(f"error: {path}: line 5: not YAML: ")


def test_no_references_to_our_images(hub_project, run_cli, tmp_path):
    path = tmp_path / "values.yaml"
    path.write_bytes((CONFIGS / "no-images.yaml").read_bytes())
    line = bad_input(
        run_cli, hub_project, "hub", "check", path, "--registry", "quay.io/scistacks", file=path
    )
    assert line == (
        f"error: {path}: no references to quay.io/scistacks/{{base,pangeo,gpu-ml,r-edu}}"
    )


def test_missing_config(hub_project, run_cli, tmp_path):
    path = tmp_path / "nowhere.yaml"
    line = bad_input(run_cli, hub_project, "hub", "bump", "--check", path, file=path)
    assert line == f"error: {path}: file not found"


def test_unreachable_registry(hub_project, run_cli, tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text("singleuser:\n  image:\n    name: localhost:1/hub/pangeo\n    tag: latest\n")
    line = bad_input(
        run_cli, hub_project, "hub", "bump", path, "--registry", "localhost:1/hub", file=path
    )
    assert line.startswith(f"error: {path}: line 4: registry localhost:1 does not answer (")


OFFLINE = """\
singleuser:
  image:
    name: localhost:1/hub/pangeo
    tag: latest
  profileList:
    - display_name: bad digest
      kubespawner_override:
        image: localhost:1/hub/pangeo@sha256:abc
    - display_name: yanked
      kubespawner_override:
        image: localhost:1/hub/pangeo:2025.02.03-2
    - display_name: fine
      kubespawner_override:
        image: localhost:1/hub/pangeo:2025.01.15
"""


def test_a_registry_down_still_gets_every_offline_finding(hub_project, run_cli, tmp_path):
    (hub_project / "yanked.yml").write_text(YANKED.format(digest="sha256:" + "1" * 64))
    values = tmp_path / "values.yaml"
    values.write_text(OFFLINE)
    out = run_cli("hub", "check", values, "--registry", "localhost:1/hub", root=hub_project)
    assert out.code == 1
    assert "Traceback" not in out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{values}:4: localhost:1/hub/pangeo:latest is a mutable tag")
    assert lines[1].startswith(f"{values}:8: localhost:1/hub/pangeo@sha256:abc: malformed digest")
    assert lines[2].startswith(f"{values}:11: localhost:1/hub/pangeo:2025.02.03-2 is yanked on")
    assert len(lines) == 3
    assert len(out.err_lines) == 1
    assert out.err_lines[0].startswith("error: registry localhost:1 does not answer")
    assert "not checked for 3 reference(s)" in out.err_lines[0]


def test_a_malformed_digest_is_refused_before_the_registry(hub_project, run_cli, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("image: localhost:1/hub/pangeo@sha256:xyz\n")
    out = run_cli("hub", "bump", values, "--registry", "localhost:1/hub", root=hub_project)
    assert out.code == 1
    assert out.err_lines == [
        f"error: {values}: line 1: localhost:1/hub/pangeo@sha256:xyz: malformed digest "
        "'sha256:xyz' (expected sha256: and 64 lowercase hex digits)"
    ]


def test_yank_of_latest_is_refused_before_the_registry(hub_project, run_cli):
    out = run_cli(
        "yank", "pangeo:latest", "--reason", "x", "--registry", "localhost:1/hub", root=hub_project
    )
    assert out.code == 1
    assert len(out.err_lines) == 1
    assert "latest is a mutable tag" in out.stderr
    assert "does not answer" not in out.stderr


def test_duplicate_keys_in_a_hub_config_are_refused(hub_project, run_cli, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(
        "singleuser:\n  image:\n    name: localhost:1/hub/pangeo\n    tag: 2025.01.15\n"
        "    tag: latest\n"
    )
    out = run_cli("hub", "check", values, "--registry", "localhost:1/hub", root=hub_project)
    assert out.code == 1
    assert out.err_lines[0].startswith(f"error: {values}: line 5: duplicate key 'tag'")
