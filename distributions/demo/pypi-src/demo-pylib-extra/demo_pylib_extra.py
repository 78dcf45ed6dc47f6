"""Per-station summaries of the demo weather dataset (read with scistacks_demo)."""

from __future__ import annotations

__version__ = "0.1.0"


def warmest(rows: list[dict] | None = None) -> tuple[str, float]:
    """The station with the highest mean temperature, and that mean."""
    import scistacks_demo

    rows = scistacks_demo.load_stations() if rows is None else rows
    by_station: dict[str, list[float]] = {}
    for row in rows:
        if row.get("temperature_c") is not None:
            by_station.setdefault(row["name"], []).append(row["temperature_c"])
    means = {name: sum(v) / len(v) for name, v in by_station.items()}
    best = max(means, key=lambda name: (means[name], name))
    return best, means[best]
