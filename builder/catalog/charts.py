"""Stage 8 (catalog). Reads a distribution's releases (sizes from the registry, package
counts from the attached SBOMs); writes SVG charts with matplotlib's SVG backend.

Output is deterministic: a fixed ``svg.hashsalt``, no ``Date`` metadata, text kept as
text (``svg.fonttype: none``, so no font is embedded or fetched), the same releases give
the same bytes.
"""

from __future__ import annotations

import io

from builder.catalog.model import Distribution

HASHSALT = "scistacks-catalog"
COLOURS = ("#1f5f99", "#b3471d", "#2e7d32", "#6a3d9a")  # contrast >= 4.5:1 on white
MARKERS = ("o", "s", "^", "D")
UNITS = (("GB", 1e9), ("MB", 1e6), ("kB", 1e3), ("bytes", 1))


def _svg(title: str, ylabel: str, labels: list[str], series: dict[str, list]) -> str:
    import matplotlib

    with matplotlib.rc_context(
        {
            "svg.hashsalt": HASHSALT,
            "svg.fonttype": "none",
            "font.family": "sans-serif",
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.6, 2.8))
        ax = fig.add_subplot()
        xs = list(range(len(labels)))
        for i, (name, values) in enumerate(sorted(series.items())):
            points = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
            if not points:
                continue
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker=MARKERS[i % len(MARKERS)],
                color=COLOURS[i % len(COLOURS)],
                label=name,
                linewidth=1.8,
            )
        ax.set_title(title, loc="left", fontsize=11)
        ax.set_ylabel(ylabel)
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        if series:
            ax.legend(frameon=False, fontsize=8, loc="lower right")
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
        return out.getvalue()


def size_chart(dist: Distribution) -> str | None:
    """Image size (MB to pull) over releases, oldest first, one line per platform."""
    releases = list(reversed(dist.releases))
    if not any(r.sizes for r in releases):
        return None
    platforms = sorted({p for r in releases for p in r.sizes})
    largest = max(s for r in releases for s in r.sizes.values())
    unit, scale = next((u, f) for u, f in UNITS if largest >= f or f == 1)
    series = {
        p: [round(r.sizes[p] / scale, 1) if p in r.sizes else None for r in releases]
        for p in platforms
    }
    labels = [r.date_tag for r in releases]
    return _svg(f"{dist.name}: image size", f"{unit} (compressed)", labels, series)


def count_chart(dist: Distribution) -> str | None:
    """Number of packages over releases (from each release's SBOM), per platform."""
    releases = list(reversed(dist.releases))
    if not any(r.counts for r in releases):
        return None
    platforms = sorted({p for r in releases for p in r.counts})
    series = {p: [r.counts.get(p) for r in releases] for p in platforms}
    return _svg(f"{dist.name}: packages", "packages", [r.date_tag for r in releases], series)
