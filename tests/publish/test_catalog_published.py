"""End to end: the demo really built, smoke-tested, released to the local registry and
yanked, then ``scistacks catalog`` over it. Here beside the publish tests, so that it
shares their session's demo build (``smoked`` in conftest.py) instead of building its own."""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest
from image.demo_support import scistacks
from publish.conftest import namespace


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
@pytest.mark.slow
def test_catalog_of_the_released_and_yanked_demo(smoked, tmp_path):
    project = tmp_path / "demo"
    shutil.copytree(smoked, project)
    registry = namespace()
    proc = scistacks(project, "release", "demo", "--registry", registry)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((project / "build" / "publish" / "demo.json").read_text())
    date_tag = next(t for t in record["immutable"] if re.fullmatch(r"\d{4}\.\d{2}\.\d{2}.*", t))
    proc = scistacks(
        project, "yank", f"demo:{date_tag}", "--reason", "demo <withdrawn>", "--registry", registry
    )
    assert proc.returncode == 0, proc.stderr

    out = tmp_path / "site"
    started = time.monotonic()
    proc = scistacks(project, "catalog", "--output", str(out), "--registry", registry, "--strict")
    print(f"catalog build of the published demo: {time.monotonic() - started:.2f}s")
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr

    page = (out / "d" / "demo" / "index.html").read_text()
    row = re.search(
        rf'<tr id="release-{re.escape(date_tag)}" class="yanked">(.*?)</tr>', page, re.S
    )
    assert row, page
    assert "demo &lt;withdrawn&gt;" in row.group(1)
    assert record["digest"][:19] in row.group(1)
    assert "smoke: passed" in row.group(1)
    # real sizes of both platforms, from the registry's manifests
    sizes = re.findall(r"(linux/(?:amd64|arm64)): ([\d.]+) MB", row.group(1))
    assert {p for p, _ in sizes} == {"linux/amd64", "linux/arm64"}
    assert all(float(mb) > 10 for _, mb in sizes)
    # the only release is yanked: its attached snippet is not offered; the catalog makes
    # one from the lock instead, pinned by the lock's content tag
    assert "attached to " + date_tag not in page
    assert "made from the lockfile" in page
    assert f"demo:{record['immutable'][0]}" in page
    assert "demo-data" in page and "demo-tool" in page
    assert (out / "d" / "demo" / "size.svg").is_file()
