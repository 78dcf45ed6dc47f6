"""The catalog's data model, artifact readers, search and rendering, without a registry."""

from __future__ import annotations

import json

import pytest

from builder.catalog import artifacts, charts, render
from builder.catalog.model import Distribution, PackageRow, Release, Site, collect
from builder.catalog.search import Query, search
from builder.lock.model import LockedDistribution, LockedPackage
from builder.project import Project
from builder.publish.sbom import sbom_json
from builder.spec import Catalog


def _lock(versions: dict[str, str], plat: str = "linux-64") -> LockedDistribution:
    packages = [
        LockedPackage(n, v, "h0_0", plat, f"https://c/{plat}/{n}-{v}-h0_0.conda", "m", f"s{n}{v}")
        for n, v in sorted(versions.items())
    ]
    return LockedDistribution("x", (plat,), ("conda-forge",), {plat: packages}, "i")


def _site(description: str = "A stack") -> Site:
    dist = Distribution("x", description, None, ("x",), ("linux-64",), "reg.io/ns/x")
    dist.packages = {"linux-64": [PackageRow("gdal", "3.9.2", "h1_0", "x", "conda", True)]}
    dist.lock_tag = "lock-0123456789ab"
    dist.releases = [
        Release(
            "2025.03.01", "sha256:" + "a" * 64, "lock-0123456789ab", {"linux/amd64": 5 * 10**8}
        ),
        Release(
            "2025.02.01", "sha256:" + "b" * 64, "lock-ba9876543210", {"linux/amd64": 4 * 10**8}
        ),
    ]
    return Site("reg.io/ns", None, {"x": dist})


def test_layers_come_from_the_spec_or_the_first_lock_of_the_chain(catalog_project):
    project = Project.at(catalog_project)
    site = collect(project, Catalog.load(project), None)
    rows = {r.name: r for r in site.distributions["pangeo"].packages["linux-64"]}
    assert rows["xarray"].layer == "pangeo" and rows["xarray"].direct
    assert rows["jupyterlab"].layer == "base" and rows["jupyterlab"].direct
    base_only = {r.name for r in site.distributions["base"].packages["linux-64"]}
    transitive = next(r for r in rows.values() if not r.direct and r.name in base_only)
    assert transitive.layer == "base"
    assert all(r.source == "conda" for r in rows.values())
    gpu = {r.name: r for r in site.distributions["gpu-ml"].packages["linux-64"]}
    assert gpu["xarray"].layer == "pangeo"


def test_the_sbom_gives_back_the_lock_it_was_made_from():
    locked = _lock({"numpy": "2.1.0", "python": "3.12.7"})
    again = artifacts.sbom_lock({"x.cdx.json": sbom_json(locked).encode()}, "x")
    assert [(p.name, p.version, p.build, p.sha256) for p in again.packages["linux-64"]] == [
        (p.name, p.version, p.build, p.sha256) for p in locked.packages["linux-64"]
    ]


@pytest.mark.parametrize(
    "files",
    [{}, {"x.cdx.json": b"{not json"}, {"x.cdx.json": b'{"bomFormat": "SPDX"}'}],
)
def test_a_damaged_sbom_is_one_reason(files):
    with pytest.raises(artifacts.Damaged):
        artifacts.sbom_lock(files, "x")


def test_smoke_summaries_as_smoke_and_collect_write_them():
    ok = b"# Smoke tests: x\n\n**passed** on 2 platforms\n\n## linux/amd64: passed\n"
    assert artifacts.smoke_summary({"s.md": ok}).passed
    failed = b"# Smoke tests: x\n\n**FAILED** (1 of 3 checks) in 2.0 s\n\n## linux/arm64: FAILED\n"
    verdict = artifacts.smoke_summary({"s.md": failed})
    assert not verdict.passed and verdict.platforms == {"linux/arm64": False}
    for bad in (b"hello", b"\xff\xfe", b"# Smoke tests: x\n\nno verdict\n"):
        with pytest.raises(artifacts.Damaged):
            artifacts.smoke_summary({"s.md": bad})


@pytest.mark.parametrize(
    ("text", "name", "constraint"),
    [
        ("gdal", "gdal", ""),
        ("gdal >= 3.9", "gdal", ">=3.9"),
        ("GDAL>=3.9,<4", "gdal", ">=3.9,<4"),
        ("gdal \u2265 3.9", "gdal", ">=3.9"),
        ("python 3.12.*", "python", "3.12.*"),
    ],
)
def test_queries(text, name, constraint):
    assert Query.parse(text) == Query(name, constraint)


def test_a_bad_query_is_a_value_error():
    for text in ("", ">=3", "gdal >=>3"):
        with pytest.raises(ValueError):
            Query.parse(text)


def test_search_uses_conda_version_order():
    site = _site()
    assert [h.version for h in search(site, "gdal >=3.9")] == ["3.9.2"]
    assert search(site, "gdal >=3.10") == []
    assert search(site, "gdal 3.9.*")[0].platform == "linux/amd64"
    assert search(site, "gdal =3.9")  # conda: 3.9.*
    assert not search(site, "gdal ==3.9")
    assert Query.parse("pip >=23").matches("24.0", "PyPI")


def test_descriptions_and_yank_reasons_are_escaped(tmp_path):
    site = _site('<script>alert("x")</script> & co')
    from builder.hub import Yank

    site.distributions["x"].releases[1].yanks = [Yank("2025.02.01", "<img src=x onerror=1>", "d")]
    render.write_site(site, tmp_path)
    for page in ("index.html", "d/x/index.html"):
        html = (tmp_path / page).read_text()
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co" in html
    page = (tmp_path / "d" / "x" / "index.html").read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=1&gt;" in page
    assert 'class="yanked"' in page


def test_pages_load_nothing_from_elsewhere(tmp_path):
    render.write_site(_site(), tmp_path)
    for page in tmp_path.rglob("*.html"):
        html = page.read_text()
        assert '<html lang="en">' in html
        for attr in ("src", "href"):
            for value in __import__("re").findall(rf'{attr}="([^"]*)"', html):
                assert "//" not in value, (page, value)  # relative links only


def test_charts_are_matplotlib_svg_and_deterministic():
    dist = _site().distributions["x"]
    first, again = charts.size_chart(dist), charts.size_chart(dist)
    assert first == again and first.startswith("<?xml") and "<dc:date>" not in first
    assert "MB (compressed)" in first and "2025.02.01" in first
    assert charts.count_chart(dist) is None  # no SBOMs: no package counts


def test_commands_pin_the_newest_release():
    commands = render.run_commands(_site().distributions["x"], "reg.io/ns")
    assert commands["scistacks"] == "scistacks run x:2025.03.01 --registry reg.io/ns"
    assert commands["docker"].startswith("docker run --rm -it -p 127.0.0.1:8888:8888 ")
    assert commands["docker"].endswith(" reg.io/ns/x:2025.03.01")


def test_size_formatting():
    assert render.human_size(None) == "\u2013"
    assert render.human_size(512) == "512 B"
    assert render.human_size(1_500_000) == "1.5 MB"
    assert json.dumps(render.human_size(2_000_000_000)) == '"2.0 GB"'
