"""The image record: build keeps the platforms still of the lock, collect joins the
records of CI's runners. On the committed demo lock; no docker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.errors import BuildError
from builder.image.record import merge_records, write_record
from builder.image.stage import BuiltImage
from builder.lock import read_lock
from builder.project import Project
from builder.records import ImageRecord

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    for folder in ("distributions", "lockfiles"):
        shutil.copytree(REPO / folder / "demo", tmp_path / "project" / folder / "demo")
    return Project.at(tmp_path / "project")


def _built(project: Project, platform: str, image_id: str = "") -> BuiltImage:
    locked = read_lock(project, "demo")
    oci = {"linux-64": "linux/amd64", "linux-aarch64": "linux/arm64"}[platform]
    return BuiltImage(
        "demo",
        platform,
        oci,
        f"scistacks/demo:x-{oci.split('/')[1]}",
        image_id or "sha256:" + platform[-2:] * 32,
        locked.lock_hash(platform),
        "native",
    )


def test_each_build_keeps_the_other_platforms_of_the_same_lock(project):
    locked = read_lock(project, "demo")
    write_record(project, locked, [_built(project, "linux-64")])
    write_record(project, locked, [_built(project, "linux-aarch64")])
    record = ImageRecord.load(project, "demo")
    assert list(record.platforms) == ["linux-64", "linux-aarch64"]
    assert record.lock_hash == locked.lock_hash()
    assert record.platforms["linux-64"].image_id == "sha256:" + "64" * 32


def test_a_platform_of_another_lock_is_dropped_and_a_damaged_record_rewritten(project):
    locked = read_lock(project, "demo")
    write_record(project, locked, [_built(project, "linux-64")])
    record = ImageRecord.load(project, "demo")
    record.platforms["linux-64"].lock_hash = "0" * 64  # built from an older lock
    record.save(project)
    write_record(project, locked, [_built(project, "linux-aarch64")])
    assert list(ImageRecord.load(project, "demo").platforms) == ["linux-aarch64"]

    project.image_record("demo").write_text('{"platforms": ')
    write_record(project, locked, [_built(project, "linux-64")])
    assert list(ImageRecord.load(project, "demo").platforms) == ["linux-64"]


def _runner(project: Project, tmp_path: Path, name: str, built: BuiltImage) -> Path:
    """A runner's checkout: the same lock, its own build/images/demo.json."""
    run = Project(tmp_path / name)
    shutil.copytree(project.root, run.root)
    write_record(run, read_lock(run, "demo"), [built])
    return run.image_record("demo")


def test_collect_joins_the_runners_records(project, tmp_path):
    runs = [
        _runner(project, tmp_path, "amd64", _built(project, "linux-64")),
        _runner(project, tmp_path, "arm64", _built(project, "linux-aarch64")),
    ]
    merged = merge_records(project, "demo", runs)
    assert list(merged.platforms) == ["linux-64", "linux-aarch64"]
    assert ImageRecord.load(project, "demo") == merged


def test_collect_refuses_two_images_of_one_platform(project, tmp_path):
    runs = [
        _runner(project, tmp_path, "one", _built(project, "linux-64")),
        _runner(project, tmp_path, "two", _built(project, "linux-64", "sha256:" + "9" * 64)),
    ]
    with pytest.raises(BuildError, match="two different linux-64 images"):
        merge_records(project, "demo", runs)
    assert not project.image_record("demo").exists()


def test_collect_refuses_a_record_of_another_lock(project, tmp_path):
    run = _runner(project, tmp_path, "old", _built(project, "linux-64"))
    record = ImageRecord.load(project, "demo", path=run)
    record.model_copy(update={"lock_hash": "0" * 64}).save(project, path=run)
    with pytest.raises(BuildError) as caught:
        merge_records(project, "demo", [run])
    assert caught.value.field == "lock_hash" and "another lock" in caught.value.message
