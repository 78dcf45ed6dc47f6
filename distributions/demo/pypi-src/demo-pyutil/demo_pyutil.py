"""demo-warmest: print the demo dataset's warmest station (a PyPI console script)."""

from __future__ import annotations

__version__ = "0.1.0"


def main() -> int:
    from demo_pylib_extra import warmest

    station, mean = warmest()
    print(f"warmest station: {station} ({mean:.1f} C)")
    return 0
