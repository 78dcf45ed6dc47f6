"""CI builds and smoke-tests each platform on its own runner; the publish job joins the
runners' build/ folders with `scistacks collect` before it publishes one multi-arch image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from docker_support import REGISTRY
from image.demo_support import scistacks
from publish.conftest import namespace

from builder.project import Project
from builder.records import ImageRecord, PlatformImage
from builder.registry import Registry

SPLIT = {"linux-64": "amd64-runner", "linux-aarch64": "arm64-runner"}


def _runner(smoked: Path, dest: Path, platform: str) -> Path:
    """What one runner uploads: build/images and build/smoke holding its platform only."""
    for sub in ("images", "smoke"):
        shutil.copytree(smoked / "build" / sub, dest / "build" / sub)
    record_file = dest / "build" / "images" / "demo.json"
    record = json.loads(record_file.read_text())
    record["platforms"] = {platform: record["platforms"][platform]}
    record_file.write_text(json.dumps(record))
    results_file = dest / "build" / "smoke" / "demo" / "results.json"
    results = json.loads(results_file.read_text())
    results["platforms"] = {platform: results["platforms"][platform]}
    results_file.write_text(json.dumps(results))
    return dest


def _publisher(smoked: Path, dest: Path) -> Path:
    shutil.copytree(smoked, dest, ignore=shutil.ignore_patterns("build"))
    return dest


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_collected_runner_outputs_publish_both_platforms(smoked, tmp_path):
    runs = [_runner(smoked, tmp_path / name, plat) for plat, name in SPLIT.items()]
    project = _publisher(smoked, tmp_path / "publisher")

    # the bug collect exists for: one runner's files alone lack the other platform
    alone = _publisher(smoked, tmp_path / "alone")
    shutil.copytree(runs[1] / "build", alone / "build")
    refused = scistacks(alone, "publish", "demo", "--registry", namespace())
    assert refused.returncode == 1 and "linux/amd64" in refused.stderr

    proc = scistacks(project, "collect", *map(str, runs))
    assert proc.returncode == 0, proc.stderr
    assert "demo: images for linux-64, linux-aarch64" in proc.stdout
    assert "demo: smoke passed on linux-64, linux-aarch64" in proc.stdout
    summary = (project / "build" / "smoke" / "demo" / "summary.md").read_text()
    assert "## linux/amd64: passed" in summary and "## linux/arm64: passed" in summary

    target = namespace()
    published = scistacks(project, "publish", "demo", "--registry", target)
    assert published.returncode == 0, published.stderr
    index = Registry(REGISTRY).manifest(f"{target}/demo".split("/", 1)[1], "latest")
    arches = {m["platform"]["architecture"] for m in json.loads(index[0])["manifests"]}
    assert {"amd64", "arm64"} <= arches


def test_collect_refuses_a_runner_of_another_lock_in_one_line(demo_project, tmp_path):
    project = _publisher(demo_project, tmp_path / "publisher")
    run = tmp_path / "run"
    image = PlatformImage(
        oci_platform="linux/amd64", ref="d:1", image_id="sha256:1", lock_hash="1", engine="native"
    )
    ImageRecord(distribution="demo", lock_hash="0" * 64, platforms={"linux-64": image}).save(
        Project(run)
    )
    proc = scistacks(project, "collect", str(run))
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert "demo.json" in line and "lock_hash" in line and "another lock" in line
    assert not (project / "build" / "images" / "demo.json").exists()
