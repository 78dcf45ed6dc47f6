"""Solver conflicts name the clashing packages and the spec files (and fields) behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.conda_channel import build_package, index_channel


@pytest.fixture
def tiny(make_project, tmp_path) -> Path:
    """A channel where lib needs py >=3.12, and a family whose root pins py 3.11.*."""
    channel = tmp_path / "channel"
    for version in ("3.11.0", "3.12.0"):
        build_package(channel, "py", version, "h0_0", "noarch", {"share/py.txt": version})
    build_package(
        channel, "lib", "1.0.0", "h0_0", "noarch", {"share/lib": "1"}, depends=["py >=3.12"]
    )
    build_package(
        channel, "app", "1.0.0", "h0_0", "noarch", {"share/app": "1"}, depends=["lib >=0.9"]
    )
    index_channel(channel)
    return make_project(
        {
            "root": {
                "name": "root",
                "channels": ["tiny"],
                "platforms": ["linux-64"],
                "dependencies": ["py 3.11.*"],
            },
            "leaf": {"name": "leaf", "extends": "root", "dependencies": ["app"]},
        },
        files={"pyproject.toml": f'[tool.scistacks.channel-map]\ntiny = "{channel}"\n'},
    )


def test_a_conflict_names_both_spec_files_and_fields(tiny, run_cli):
    result = run_cli("lock", "leaf", root=tiny)
    assert result.code == 1
    errors = [ln for ln in result.err_lines if not ln.startswith("  solved ")]
    assert len(errors) == 1 and len(result.err_lines) <= 4, result.err_lines
    line = errors[0]
    assert "'app' (distributions/leaf/distribution.yml: dependencies[0])" in line
    assert "needs py >=3.12 (through lib >=0.9)" in line
    assert "'py 3.11.*' (distributions/root/distribution.yml: dependencies[0])" in line
    assert "no viable options" not in line and "Cannot solve" not in line
    assert not (tiny / "lockfiles").exists()
