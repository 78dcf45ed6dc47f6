"""``scistacks catalog`` against a release history in the local registry (tiny images with
real artifacts, see conftest.py), and against a registry that does not answer."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.catalog import build
from builder.catalog.model import collect
from builder.project import Project
from builder.spec import Catalog


def run_catalog(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(project), "catalog", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.registry
def test_the_site_shows_releases_yanks_sizes_diffs_and_warns_of_a_damaged_artifact(world, tmp_path):
    out = tmp_path / "site"
    started = time.monotonic()
    proc = run_catalog(world.project, "--output", str(out), "--registry", world.registry)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    print(f"catalog build: {seconds:.2f}s")
    # one warning line, naming the release whose smoke summary is damaged
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, proc.stderr
    assert "pangeo:2025.01.15" in warnings[0] and "smoke summary" in warnings[0]

    pangeo = (out / "d" / "pangeo" / "index.html").read_text()
    text = _text(pangeo)
    # every release, newest first
    order = [text.index(t) for t in ("2025.03.01", "2025.02.03", "2025.01.15")]
    assert order == sorted(order)
    # the yanked one, with its reason (escaped) and its replacement
    row = re.search(r'<tr id="release-2025.02.03" class="yanked">(.*?)</tr>', pangeo, re.S)
    assert row, "the yanked release row is not marked"
    assert "Yanked" in row.group(1)
    assert "dask 2099 &lt;breaks&gt; distributed" in row.group(1)
    assert 'href="#release-2025.03.01"' in row.group(1)
    # sizes per platform and digests
    digest = world.digests[("pangeo", "2025.03.01")]
    assert digest[:19] in pangeo
    assert "linux/amd64:" in text and "linux/arm64:" in text
    # the diff from the previous release, flagged: 2025.02.03 had xarray 2025.1.2, dask 2099
    changes = pangeo[pangeo.index('id="changes"') : pangeo.index('id="packages"')]
    assert re.search(r"<strong>xarray</strong>.*?2025\.1\.2.*?upgraded", changes, re.S)
    assert re.search(r"<strong>dask</strong>.*?2099\.1\.0.*?downgraded", changes, re.S)
    assert re.search(r"<strong>flox</strong>.*?added", changes, re.S)  # since 2025.01.15
    # charts: SVG made by matplotlib
    for chart in ("size.svg", "packages.svg"):
        svg = (out / "d" / "pangeo" / chart).read_text()
        assert svg.startswith("<?xml") and "matplotlib" in svg
    # the package table: layers of the hierarchy
    assert re.search(r"<td>python</td>|<strong>python</strong>", pangeo)
    assert re.search(
        r"<strong>xarray</strong></td>\s*<td>[^<]+</td><td>[^<]+</td><td>pangeo</td>", pangeo
    )
    assert re.search(
        r"<strong>jupyterlab</strong></td>\s*<td>[^<]+</td><td>[^<]+</td><td>base</td>", pangeo
    )
    # commands, pinned by the newest release that is not yanked
    assert f"scistacks run pangeo:2025.03.01 --registry {world.registry}" in text
    assert f"{world.registry}/pangeo:2025.03.01" in text

    index = _text((out / "index.html").read_text())
    assert "smoke: passed" in index
    assert index.index("base") < index.index("pangeo") < index.index("gpu-ml")


@pytest.mark.registry
def test_the_output_is_deterministic_and_replaced_whole(world, tmp_path):
    project = Project.at(world.project)
    catalog = Catalog.load(project)
    out = tmp_path / "site"
    first = build(project, catalog, out, world.registry)
    files = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (out / "stale.html").write_text("from an older site")
    build(project, catalog, out, world.registry)
    again = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert again == files  # the same bytes, and nothing left of the old site
    assert first.pages == 2 + len(catalog.names())
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no temp folder left


def test_a_registry_that_does_not_answer_gives_the_lockfiles_with_a_banner(
    catalog_project, tmp_path
):
    out = tmp_path / "site"
    down = "127.0.0.1:9/nobody"  # the discard port: nothing listens
    proc = run_catalog(catalog_project, "--output", str(out), "--registry", down)
    assert proc.returncode == 0, proc.stderr
    assert "does not answer" in proc.stderr
    page = (out / "index.html").read_text()
    assert 'class="banner" role="alert"' in page and "does not answer" in page
    assert "xarray" in (out / "d" / "pangeo" / "index.html").read_text()

    strict = run_catalog(catalog_project, "--output", str(out), "--registry", down, "--strict")
    assert strict.returncode == 1
    assert strict.stderr.strip().splitlines()[-1].startswith("error: ")
    assert (out / "index.html").is_file()  # the site is still written


def test_collect_without_a_registry_reads_the_lockfiles(catalog_project):
    project = Project.at(catalog_project)
    site = collect(project, Catalog.load(project), None)
    assert site.registry is None and site.registry_error is None
    assert not site.distributions["pangeo"].releases
    assert site.distributions["pangeo"].lock_tag.startswith("lock-")
