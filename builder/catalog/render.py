"""Stage 8 (catalog). Reads a ``Site`` (builder.catalog.model); writes the static site's
pages with the Jinja2 templates shipped in ``builder/catalog/templates/`` (autoescaped),
the SVG charts and the vendored ``static/`` files, into a folder given by the caller.

Pages link to each other relatively, so the site works from any web server path (GitHub
Pages project sites included) and from ``file://``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from builder.catalog import charts
from builder.catalog.model import Distribution, Release, Site
from builder.project import OCI_PLATFORMS
from builder.run import CONTAINER_PORT, WORK

STATIC = ("catalog.css", "catalog.js")
CHANGE_WORDS = {
    "upgraded": "upgraded",
    "downgraded": "downgraded",
    "added": "added",
    "removed": "removed",
    "build": "rebuilt",
}


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("builder.catalog", "templates"),
        autoescape=True,  # every page is HTML: every value is escaped unless marked safe
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["size"] = human_size
    env.filters["short"] = lambda digest: (digest or "")[:19]
    env.filters["oci"] = lambda plat: OCI_PLATFORMS.get(plat, plat)
    env.globals["change_words"] = CHANGE_WORDS
    env.globals["badge"] = badge
    return env


def human_size(n: int | None) -> str:
    if n is None:
        return "\u2013"  # an en dash: unknown
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def run_commands(dist: Distribution, registry: str | None) -> dict[str, str]:
    """The exact commands a researcher types: ``scistacks run`` and plain ``docker run``."""
    tag = dist.pin or "TAG"
    reg = (registry or "REGISTRY/NAMESPACE").rstrip("/")
    image = f"{reg}/{dist.name}:{tag}"
    port = f"127.0.0.1:{CONTAINER_PORT}:{CONTAINER_PORT}"
    return {
        "scistacks": f"scistacks run {shlex.quote(f'{dist.name}:{tag}')} --registry "
        f"{shlex.quote(reg)}",
        # the token in the environment (not in argv); the server prints its URL
        "docker": f'docker run --rm -it -p {port} -v "$PWD:{WORK}" '
        f'-e JUPYTER_TOKEN="$(openssl rand -hex 16)" {shlex.quote(image)}',
    }


def badge(release: Release | None) -> tuple[str, str]:
    """(css class, text) of the smoke badge of a release."""
    if release is None:
        return "unknown", "not released"
    if release.smoke is None:
        return "unknown", "smoke: unknown"
    return ("pass", "smoke: passed") if release.smoke.passed else ("fail", "smoke: FAILED")


def search_rows(site: Site) -> list[dict]:
    """One row per (package, version, build, source, distribution): the platforms it has."""
    rows: dict[tuple, dict] = {}
    for dist in site.distributions.values():
        for plat, packages in dist.packages.items():
            for p in packages:
                key = (p.name.lower(), p.version, p.build, p.source, dist.name)
                row = rows.setdefault(
                    key,
                    {
                        "name": p.name,
                        "version": p.version,
                        "build": p.build,
                        "source": p.source,
                        "distribution": dist.name,
                        "platforms": [],
                    },
                )
                row["platforms"].append(OCI_PLATFORMS.get(plat, plat))
    return [rows[k] for k in sorted(rows)]


def write_site(site: Site, out: Path) -> list[Path]:
    """Every page, chart and static file of ``site`` under ``out`` (which must exist)."""
    env = environment()
    written: list[Path] = []

    def page(rel: str, template: str, root: str, **context) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        html = env.get_template(template).render(site=site, root=root, **context)
        path.write_text(html, encoding="utf-8")
        written.append(path)

    page("index.html", "index.html", "", title="Images")
    page("search.html", "search.html", "", title="Package search", rows=search_rows(site))
    for dist in site.distributions.values():
        folder = f"d/{dist.name}"
        svgs = {}
        for kind, chart in (("size", charts.size_chart), ("packages", charts.count_chart)):
            svg = chart(dist)
            if svg is not None:
                (out / folder).mkdir(parents=True, exist_ok=True)
                (out / folder / f"{kind}.svg").write_text(svg, encoding="utf-8")
                written.append(out / folder / f"{kind}.svg")
                svgs[kind] = f"{kind}.svg"
        page(
            f"{folder}/index.html",
            "distribution.html",
            "../../",
            title=dist.name,
            dist=dist,
            charts=svgs,
            commands=run_commands(dist, site.registry),
        )
    static = Path(__file__).parent / "templates" / "static"
    (out / "static").mkdir(exist_ok=True)
    for name in STATIC:
        (out / "static" / name).write_bytes((static / name).read_bytes())
        written.append(out / "static" / name)
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve the folder as it is
    return written
