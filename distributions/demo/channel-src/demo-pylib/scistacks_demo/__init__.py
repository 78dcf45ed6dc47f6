"""scistacks_demo: read the demo weather-station dataset (the demo-data package).

A pure-Python library with no dependencies beyond the standard library, installed by the
``demo-pylib`` conda package under ``PREFIX/lib/python3/site-packages`` (the demo image's
``start`` script puts that folder on ``PYTHONPATH`` for Debian's python3).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

__version__ = "0.2.0"
__all__ = ["data_path", "load_stations", "prefix", "summary"]

DEFAULT_PREFIX = "/srv/conda/envs/notebook"
NUMERIC = ("latitude", "longitude", "elevation_m", "temperature_c", "precipitation_mm")


def prefix() -> Path:
    """The environment holding demo-data: $CONDA_PREFIX, $NB_PYTHON_PREFIX, or the default."""
    for var in ("CONDA_PREFIX", "NB_PYTHON_PREFIX"):
        value = os.environ.get(var)
        if value and (Path(value) / "share" / "demo-data").is_dir():
            return Path(value)
    here = Path(__file__).resolve()
    # PREFIX/lib/python3/site-packages/scistacks_demo/__init__.py
    if len(here.parents) > 4 and (here.parents[4] / "share" / "demo-data").is_dir():
        return here.parents[4]
    return Path(DEFAULT_PREFIX)


def data_path(name: str = "stations.csv") -> Path:
    return prefix() / "share" / "demo-data" / name


def load_stations(path: str | os.PathLike | None = None) -> list[dict]:
    """Rows of stations.csv as dicts; numeric columns as floats (None when missing)."""
    rows = []
    with open(path or data_path(), newline="") as fh:
        for row in csv.DictReader(fh):
            for key in NUMERIC:
                if key in row:
                    value = row[key]
                    row[key] = float(value) if value not in ("", "NA") else None
            rows.append(row)
    return rows


def summary(rows: list[dict], column: str = "temperature_c") -> dict:
    """count, missing, mean, min and max of one column, like the demo-stats tool prints."""
    values = [r[column] for r in rows if r.get(column) is not None]
    out = {"column": column, "count": len(values), "missing": len(rows) - len(values)}
    if values:
        out.update(mean=sum(values) / len(values), min=min(values), max=max(values))
    return out
