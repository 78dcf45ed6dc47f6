"""The typed model of one distribution.yml (builder/spec/models.py) and reading it from a
file (builder/spec/loader.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from builder.errors import ScistacksError, SpecError
from builder.project import DEFAULT_PLATFORMS, KNOWN_PLATFORMS
from builder.spec.loader import parse_spec
from builder.spec.models import (
    DistributionSpec,
    Hub,
    Notebook,
    Platform,
    Quantity,
)
from builder.spec.schema import Invalid

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.parent.name for p in (REPO_ROOT / "distributions").glob("*/distribution.yml"))


# ---------------------------------------------------------------- DistributionSpec


def test_minimal_spec_defaults():
    spec = DistributionSpec(name="tiny")
    assert spec.extends is None
    assert spec.platforms is None  # None: inherit (or the defaults at a root)
    assert spec.channels == [] and spec.dependencies == [] and spec.pip == []
    assert spec.virtual_packages == {}
    assert spec.notebooks == [] and spec.imports == []
    assert spec.hub is None and spec.solve_group is None
    assert spec.post_build is None and spec.start is None


def test_spec_is_frozen():
    spec = DistributionSpec(name="tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


def test_platform_literal_matches_known_platforms():
    assert set(Platform.__args__) == set(KNOWN_PLATFORMS)
    assert set(DEFAULT_PLATFORMS) <= set(KNOWN_PLATFORMS)
    assert "linux-64" in DEFAULT_PLATFORMS


@pytest.mark.parametrize("name", ["base", "gpu-ml", "r.edu", "py3_12", "0day", "a"])
@pytest.mark.parametrize("key", ["name", "extends", "solve_group"])
def test_valid_names(key, name):
    data = {"name": "x", key: name}
    assert getattr(DistributionSpec.validate(data), key) == name


@pytest.mark.parametrize(
    "name",
    ["Base", "-base", ".base", "_base", "my stack", "", "café", "a/b", "gpu:ml", "base\n"],
)
@pytest.mark.parametrize("key", ["name", "extends", "solve_group"])
def test_invalid_names(key, name):
    data = {"name": "x", key: name}
    with pytest.raises(Invalid) as info:
        DistributionSpec.validate(data)
    assert info.value.errors()[0].loc == (key,)


def test_unknown_keys_are_refused_everywhere():
    for data, loc in [
        ({"name": "x", "dependecies": []}, ("dependecies",)),
        ({"name": "x", "hub": {"display_name": "X", "gpus": 1}}, ("hub", "gpus")),
        ({"name": "x", "hub": {"display_name": "X", "cpu": {"max": 2}}}, ("hub", "cpu", "max")),
    ]:
        with pytest.raises(Invalid) as info:
            DistributionSpec.validate(data)
        assert any(e.kind == "unknown" and e.loc == loc for e in info.value.errors())


@pytest.mark.parametrize(
    "platforms",
    [["linux-64"], ["linux-64", "linux-aarch64"], ["osx-arm64", "win-64", "linux-ppc64le"]],
)
def test_known_platforms(platforms):
    assert DistributionSpec.validate(dict(name="x", platforms=platforms)).platforms == platforms


@pytest.mark.parametrize(
    "platforms",
    [[], ["linux-64", "linux-64"], ["linux-arm64"], ["linux/amd64"], ["amd64"], ["noarch"]],
)
def test_bad_platforms(platforms):
    with pytest.raises(Invalid):
        DistributionSpec.validate(dict(name="x", platforms=platforms))


def test_virtual_packages_need_double_underscore():
    spec = DistributionSpec.validate(
        dict(name="x", virtual_packages={"__cuda": "12.0", "__glibc": "2.28"})
    )
    assert spec.virtual_packages["__cuda"] == "12.0"
    with pytest.raises(Invalid):
        DistributionSpec.validate(dict(name="x", virtual_packages={"cuda": "12.0"}))


def test_notebooks_as_paths_or_mappings():
    spec = DistributionSpec.validate(
        dict(
            name="x",
            notebooks=["a.ipynb", {"path": "b.ipynb", "network": True, "platforms": ["linux-64"]}],
        )
    )
    assert spec.notebooks[0] == "a.ipynb"
    assert isinstance(spec.notebooks[1], Notebook)
    assert spec.notebooks[1].network is True
    assert spec.notebooks[1].timeout == 600


def test_a_notebook_listed_twice_is_refused_in_either_form():
    with pytest.raises(Invalid) as info:
        DistributionSpec.validate(dict(name="x", notebooks=["a.ipynb", {"path": "a.ipynb"}]))
    assert info.value.errors()[0].loc == ("notebooks",)


@pytest.mark.parametrize("field", ["timeout", "cell_timeout"])
@pytest.mark.parametrize("value", [0, -5])
def test_notebook_timeouts_are_positive(field, value):
    with pytest.raises(Invalid):
        Notebook.validate(dict(path="a.ipynb", **{field: value}))


# ---------------------------------------------------------------- Hub and quantities


def test_hub_needs_a_display_name():
    with pytest.raises(Invalid):
        Hub.validate({})
    hub = Hub.validate(dict(display_name="Python"))
    assert hub.gpu == 0 and hub.default is False and hub.description == ""


def test_hub_gpu_is_a_non_negative_integer():
    assert Hub.validate(dict(display_name="x", gpu=2)).gpu == 2
    for bad in (-1, "one", 1.5):
        with pytest.raises(Invalid):
            Hub.validate(dict(display_name="x", gpu=bad))


@pytest.mark.parametrize(
    "value", [2, 0.5, "1", "1.5", "500m", "4G", "8Gi", "512Mi", "512Ki", "100k", "1Ti", "2E"]
)
def test_kubernetes_quantities(value):
    assert Quantity.validate(dict(limit=value)).limit is not None
    assert Quantity.validate(dict(guarantee=value)).guarantee is not None


@pytest.mark.parametrize(
    "value", ["8 GB", "8GB", "4g", "512ki", "1.5.2", "-1", "G", "", "lots", "2Gb", "100M ", "4G\n"]
)
def test_not_kubernetes_quantities(value):
    with pytest.raises(Invalid):
        Quantity.validate(dict(limit=value))


# ---------------------------------------------------------------- parse_spec (loader)


def _write(tmp_path: Path, name: str, text: str, extra: dict[str, str] | None = None) -> Path:
    path = tmp_path / "distributions" / name / "distribution.yml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    for rel, content in (extra or {}).items():
        (path.parent / rel).write_text(content)
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_specs_parse(name):
    path = REPO_ROOT / "distributions" / name / "distribution.yml"
    spec = parse_spec(path, f"distributions/{name}/distribution.yml")
    assert spec.name == name
    assert spec.dump(exclude_defaults=True)["name"] == name


@pytest.mark.parametrize(
    "dep",
    [
        "python 3.12.*",
        "numpy=1.26",
        "numpy==1.26.4",
        "numpy >=1.26,<3",
        "conda-forge::numpy >=2",
        "pytorch >=2.5 cuda*",
        "numpy[version='>=2']",
        "libblas * *mkl",
        "python 3.12.*|3.13.*",
        "cf_xarray",
    ],
)
def test_accepted_dependency_forms(tmp_path, dep):
    text = yaml.safe_dump({"name": "ok", "dependencies": [dep]})
    spec = parse_spec(_write(tmp_path, "ok", text), "distributions/ok/distribution.yml")
    assert spec.dependencies == [dep]


@pytest.mark.parametrize(
    "dep",
    ["numpy >>2", "numpy >=2,", "python ===", "numpy[", "numpy >=2 - xarray", "  "],
)
def test_refused_dependency_forms(tmp_path, dep):
    text = yaml.safe_dump({"name": "bad", "dependencies": ["python", dep]})
    with pytest.raises(SpecError) as info:
        parse_spec(_write(tmp_path, "bad", text), "distributions/bad/distribution.yml")
    assert info.value.field == "dependencies[1]"
    assert info.value.file == "distributions/bad/distribution.yml"


@pytest.mark.parametrize(
    "req",
    [
        "requests",
        "requests[socks]>=2.31",
        "typing_extensions; python_version < '3.13'",
        "pkg @ https://example.org/pkg-1.0-py3-none-any.whl",
    ],
)
def test_accepted_pip_requirements(tmp_path, req):
    text = yaml.safe_dump({"name": "ok", "pip": [req]})
    spec = parse_spec(_write(tmp_path, "ok", text), "distributions/ok/distribution.yml")
    assert spec.pip == [req]


@pytest.mark.parametrize(
    ("req", "words"),
    [
        ("git+https://github.com/pangeo-data/xarray-tutorial", "write it as 'NAME @ git+"),
        ("https://example.org/pkg-1.0-py3-none-any.whl", "has no project name"),
        ("--pre", "a pip option, not a requirement"),
        ("-e .", "a pip option, not a requirement"),
        ("requests >=", "invalid pip requirement 'requests >='"),
    ],
)
def test_pip_takes_pep508_requirements_only(tmp_path, req, words):
    text = yaml.safe_dump({"name": "bad", "pip": ["attrs", req]})
    with pytest.raises(SpecError) as info:
        parse_spec(_write(tmp_path, "bad", text), "distributions/bad/distribution.yml")
    assert info.value.field == "pip[1]"
    assert words in info.value.message


def test_pip_requirement_listed_twice(tmp_path):
    text = yaml.safe_dump({"name": "bad", "pip": ["Demo_Pyutil", "demo-pyutil >=0.1"]})
    with pytest.raises(SpecError, match="'demo-pyutil' is listed twice") as info:
        parse_spec(_write(tmp_path, "bad", text), "distributions/bad/distribution.yml")
    assert info.value.field == "pip[1]"


@pytest.mark.parametrize(
    ("value", "ok"), [("3.11", True), ("3.10", True), (3.11, False), ("3", False)]
)
def test_pip_python_is_a_quoted_major_minor(tmp_path, value, ok):
    text = yaml.safe_dump({"name": "ok", "pip": ["attrs"], "pip_python": value})
    path = _write(tmp_path, "ok", text)
    if ok:
        assert parse_spec(path, "distributions/ok/distribution.yml").pip_python == value
        return
    with pytest.raises(SpecError) as info:
        parse_spec(path, "distributions/ok/distribution.yml")
    assert info.value.field == "pip_python"


def test_scripts_must_exist_next_to_the_spec(tmp_path):
    text = "name: ok\npost_build: postBuild\nstart: start\n"
    path = _write(tmp_path, "ok", text, {"postBuild": "#!/bin/sh\n", "start": "#!/bin/sh\n"})
    spec = parse_spec(path, "distributions/ok/distribution.yml")
    assert spec.post_build == "postBuild" and spec.start == "start"
    (path.parent / "start").unlink()
    with pytest.raises(SpecError) as info:
        parse_spec(path, "distributions/ok/distribution.yml")
    assert info.value.field == "start"


def test_errors_use_the_shown_path_and_one_line(tmp_path):
    path = _write(tmp_path, "ok", "name: ok\ndependencies:\n  - python\n  - python\n")
    with pytest.raises(SpecError) as info:
        parse_spec(path, "distributions/ok/distribution.yml")
    exc = info.value
    assert str(exc).startswith("distributions/ok/distribution.yml: dependencies[1]: ")
    assert str(tmp_path) not in str(exc)
    assert "\n" not in str(exc)


def test_error_messages_are_always_one_line():
    exc = ScistacksError("first line\n  second   line\n", file="f.yml", field="x")
    assert str(exc) == "f.yml: x: first line second line"
    assert str(ScistacksError("bare")) == "bare"
