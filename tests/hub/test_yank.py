"""``yank``: yanked.yml under version control plus an advisory attached in the registry;
``hub bump`` and ``hub check`` honour either."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
import yaml
from hub.conftest import REPO

from builder import hub
from builder.errors import HubError
from builder.project import Project
from builder.spec import Catalog

pytestmark = pytest.mark.registry

YANK_TYPE = "application/vnd.scistacks.yank+json"
REASON = "zarr v3 writes with blosc compression lose data"


def api(world):
    project = Project.at(world.project)
    return project, Catalog.load(project)


def advisories(world, release) -> list[dict]:
    """The yank artifacts' JSON payloads attached to ``release``, read with the plain client."""
    repo = world.repository(release.distribution)
    out = []
    for entry in world.client.referrers(repo, release.digest, YANK_TYPE):
        manifest = json.loads(world.client.manifest(repo, entry["digest"])[0])
        assert manifest["subject"]["digest"] == release.digest
        out.append(json.loads(world.client.blob(repo, manifest["layers"][0]["digest"])))
    return out


def test_yank_records_attaches_and_bump_takes_the_release_before(hub_world, run_cli):
    reg = hub_world.registry
    newest = hub_world.release("pangeo", "2025.02.03-2")
    day = dt.datetime.now(dt.UTC).date().isoformat()

    out = run_cli(
        "yank",
        "pangeo:2025.02.03-2",
        "--reason",
        REASON,
        "--registry",
        reg,
        "--replaced-by",
        "2025.02.03",
        root=hub_world.project,
    )

    assert out.code == 0, out.stderr
    assert out.stdout.startswith(f"yanked: {reg}/pangeo:2025.02.03-2 ({newest.digest}), advisory ")
    text = (hub_world.project / "yanked.yml").read_text()
    assert text.startswith("# Yanked tags: published images that must not be used any more")
    expected = {
        "distribution": "pangeo",
        "tag": "2025.02.03-2",
        "digest": newest.digest,
        "reason": REASON,
        "date": day,
        "replaced_by": "2025.02.03",
    }
    saved = yaml.safe_load(text)
    assert saved["version"] == 1
    assert [{**e, "date": str(e["date"])} for e in saved["yanked"]] == [expected]
    assert advisories(hub_world, newest) == [expected]

    # bump: the newest release that is not yanked is 2025.02.03 (lock-222…)
    project, catalog = api(hub_world)
    z2jh = hub_world.config("z2jh-values.yaml")
    [bumped] = hub.bump(project, catalog, [z2jh], [reg], write=False)
    assert {r.line: t for r, t in bumped.changes.items()} == {
        22: "2025.02.03",
        36: "lock-555555555555",
        40: "lock-666666666666",
    }

    # the registry's advisory alone is enough: a hub config repo without our yanked.yml
    shutil.copy(REPO / "yanked.yml", hub_world.project / "yanked.yml")
    daskhub = hub_world.config("daskhub.values.yaml")
    [bumped] = hub.bump(project, catalog, [daskhub], [reg], write=False)
    assert {r.line: t for r, t in bumped.changes.items()} == {11: "lock-222222222222"}
    yanked_ref = hub_world.project.parent / "yanked-ref.yaml"
    yanked_ref.write_text(
        f"singleuser:\n  image:\n    name: {reg}/pangeo\n    tag: lock-333333333333\n"
    )
    report = hub.check(project, catalog, [yanked_ref], [reg])
    assert [str(f) for f in report.problems] == [
        f"{yanked_ref}:4: {reg}/pangeo:lock-333333333333 is yanked on {day} (2025.02.03-2): "
        f"{REASON}; replaced by {reg}/pangeo:2025.02.03"
    ]


def test_yank_is_idempotent_and_each_tag_is_its_own_entry(hub_world):
    project, catalog = api(hub_world)
    reg = hub_world.registry
    newest = hub_world.release("pangeo", "2025.02.03-2")
    day = dt.date(2025, 2, 5)

    first = hub.yank(project, catalog, "pangeo:2025.02.03-2", REASON, reg, today=day)
    again = hub.yank(project, catalog, "pangeo:2025.02.03-2", REASON, reg, today=day)
    same_image = hub.yank(project, catalog, "pangeo:lock-333333333333", REASON, reg, today=day)

    assert (first.recorded, again.recorded, same_image.recorded) == (True, False, True)
    assert again.artifact == first.artifact
    saved = yaml.safe_load((hub_world.project / "yanked.yml").read_text())["yanked"]
    assert [(e["tag"], e["digest"], e["date"]) for e in saved] == [
        ("2025.02.03-2", newest.digest, day),
        ("lock-333333333333", newest.digest, day),
    ]
    assert sorted(a["tag"] for a in advisories(hub_world, newest)) == [
        "2025.02.03-2",
        "lock-333333333333",
    ]


def test_refused_yanks_write_nothing(hub_world, run_cli):
    reg = hub_world.registry
    yanked_yml = hub_world.project / "yanked.yml"
    before = yanked_yml.read_bytes()
    newest = hub_world.release("pangeo", "2025.02.03-2")

    for args, message in [
        (
            ["pangeo:latest"],
            # refused before the registry is asked: it cannot name the tag's target
            "error: NAME:TAG: latest is a mutable tag; yank the immutable tag it points at "
            "(its lock-… content tag or YYYY.MM.DD release: scistacks hub check lists them)",
        ),
        (
            ["pangeo:2020.01.01"],
            f"error: NAME:TAG: {reg}/pangeo:2020.01.01 does not exist in the registry; "
            "nothing yanked",
        ),
    ]:
        out = run_cli("yank", *args, "--reason", REASON, "--registry", reg, root=hub_world.project)
        assert (out.code, out.err_lines) == (1, [message])
        assert "Traceback" not in out.stderr
    assert yanked_yml.read_bytes() == before
    assert advisories(hub_world, newest) == []


def test_a_corrupt_yanked_list_is_one_error_naming_the_field(hub_world):
    project, catalog = api(hub_world)
    (hub_world.project / "yanked.yml").write_text(
        "version: 1\nyanked:\n  - distribution: pangeo\n    tag: 2025.02.03\n"
        "    digest: sha256:abc\n    reason: bad\n    date: 2025-02-05\n"
    )
    with pytest.raises(HubError) as err:
        hub.yank(project, catalog, "pangeo:2025.02.03-2", REASON, hub_world.registry)
    assert (err.value.file, err.value.field) == ("yanked.yml", "yanked.0.digest")
    z2jh = hub_world.config("z2jh-values.yaml")
    with pytest.raises(HubError) as err:
        hub.check(project, catalog, [z2jh], [hub_world.registry])
    assert err.value.file == "yanked.yml"
    assert advisories(hub_world, hub_world.release("pangeo", "2025.02.03-2")) == []
