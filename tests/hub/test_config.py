"""Finding and rewriting references in hub config files (no registry involved)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from builder.errors import HubError
from builder.hub.config import (
    PROFILE_LIST,
    PROFILE_OPTIONS,
    STRING,
    Z2JH,
    HubConfig,
    Ours,
    render_scalar,
)

CONFIGS = Path(__file__).resolve().parent / "configs"
OURS = Ours(["quay.io/scistacks"], ["base", "pangeo", "gpu-ml", "r-edu"])
DIGEST = "sha256:" + "ab" * 32


def found(name: str) -> list[tuple]:
    config = HubConfig.load(CONFIGS / name, OURS)
    return [(r.line, r.kind, r.path, r.distribution, r.tag, r.digest) for r in config.refs]


def test_z2jh_values():
    assert found("z2jh-values.yaml") == [
        (22, Z2JH, "singleuser.image", "pangeo", "2025.01.15", None),
        (
            36,
            PROFILE_LIST,
            "singleuser.profileList[1].kubespawner_override.image",
            "r-edu",
            "lock-444444444444",
            None,
        ),
        (
            40,
            PROFILE_LIST,
            "singleuser.profileList[2].kubespawner_override.image",
            "base",
            "latest",
            None,
        ),
        (47, STRING, "singleuser.initContainers[0].image", "base", "2025.01.15", None),
    ]  # not the hub's own image (line 16), not jupyter/scipy-notebook (line 43)


def test_2i2c_cluster_values_with_profile_options_and_anchors():
    choices = "basehub.jupyterhub.singleuser.profileList[0].profile_options.image.choices"
    assert found("2i2c-cluster.values.yaml") == [
        (23, Z2JH, "basehub.jupyterhub.singleuser.image", "base", "lock-666666666666", None),
        (
            47,
            PROFILE_OPTIONS,
            f"{choices}.pangeo.kubespawner_override.image",
            "pangeo",
            "lock-111111111111",
            None,
        ),
        (
            52,
            PROFILE_OPTIONS,
            f"{choices}.r-edu.kubespawner_override.image",
            "r-edu",
            "2024.12.01",
            None,
        ),
        (
            58,
            PROFILE_OPTIONS,
            f"{choices}.audited.kubespawner_override.image",
            "pangeo",
            None,
            DIGEST,
        ),
    ]  # unlisted_choice's "{value}" (line 40) and the alias *pangeo_image (line 67) are no new refs


def test_daskhub_values():
    assert found("daskhub.values.yaml") == [
        (6, Z2JH, "jupyterhub.singleuser.image", "pangeo", "lock-222222222222", None),
        (
            11,
            PROFILE_LIST,
            "jupyterhub.singleuser.profileList[0].kubespawner_override.image",
            "pangeo",
            None,
            None,
        ),
        (23, Z2JH, "dask-gateway.gateway.backend.image", "pangeo", "lock-222222222222", None),
    ]  # the reference inside extraConfig's Python (line 31) is text, not a value


def test_only_our_registries_and_distributions_count():
    other = Ours(["ghcr.io/someone-else"], ["pangeo"])
    with pytest.raises(HubError) as err:
        HubConfig.load(CONFIGS / "z2jh-values.yaml", other, shown="values.yaml")
    assert str(err.value) == "values.yaml: no references to ghcr.io/someone-else/{pangeo}"
    only_base = Ours(["quay.io/scistacks"], ["base"])
    lines = [r.line for r in HubConfig.load(CONFIGS / "z2jh-values.yaml", only_base).refs]
    assert lines == [40, 47]


def test_no_references_and_not_yaml_name_the_file_and_line():
    with pytest.raises(HubError) as err:
        HubConfig.load(CONFIGS / "no-images.yaml", OURS, shown="no-images.yaml")
    assert str(err.value) == (
        "no-images.yaml: no references to quay.io/scistacks/{base,pangeo,gpu-ml,r-edu}"
    )
    with pytest.raises(HubError) as err:
        HubConfig.load(CONFIGS / "not-yaml.yaml", OURS, shown="not-yaml.yaml")
    assert err.value.file == "not-yaml.yaml"
    assert err.value.field == "line 5"  # where the scanner gave up on the {{- with }} line
    assert "not YAML" in err.value.message and "line 4" in err.value.message
    with pytest.raises(HubError, match="file not found"):
        HubConfig.load(CONFIGS / "missing.yaml", OURS)


def changed_lines(old: str, new: str) -> dict[int, str]:
    """1-based line -> new text, for the lines that differ; the line count must not change."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    assert len(a) == len(b)
    return {i + 1: y for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y}


def test_rewrite_touches_only_the_tags_in_their_own_quoting():
    config = HubConfig.load(CONFIGS / "z2jh-values.yaml", OURS)
    new = config.rewritten({r: "2030.01.01" for r in config.refs})
    assert changed_lines(config.text, new) == {
        22: '    tag: "2030.01.01"   # a date, so that people can read which release they run\n',
        36: "        image: 'quay.io/scistacks/r-edu:2030.01.01'\n",
        40: "        image: quay.io/scistacks/base:2030.01.01   # TODO: pin this before term starts\n",
        47: "      image: quay.io/scistacks/base:2030.01.01\n",
    }


def test_rewrite_of_an_anchor_moves_its_aliases_and_leaves_digests():
    config = HubConfig.load(CONFIGS / "2i2c-cluster.values.yaml", OURS)
    tags = {r: "lock-999999999999" for r in config.refs if r.digest is None}
    new = config.rewritten(tags)
    assert changed_lines(config.text, new) == {
        23: "        tag: lock-999999999999\n",
        47: '                    image: &pangeo_image "quay.io/scistacks/pangeo:lock-999999999999"\n',
        52: "                    image: quay.io/scistacks/r-edu:lock-999999999999\n",
    }
    data = YAML(typ="safe", pure=True).load(new)
    large = data["basehub"]["jupyterhub"]["singleuser"]["profileList"][1]
    assert large["kubespawner_override"]["image"] == "quay.io/scistacks/pangeo:lock-999999999999"


def test_untagged_references_get_a_tag():
    config = HubConfig.load(CONFIGS / "daskhub.values.yaml", OURS)
    new = config.rewritten({r: "lock-999999999999" for r in config.refs})
    assert changed_lines(config.text, new) == {
        6: "      tag: lock-999999999999\n",
        11: "        kubespawner_override: {image: quay.io/scistacks/pangeo:lock-999999999999, cpu_limit: 2}\n",
        23: "        tag: lock-999999999999\n",
    }


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (
            "  image:\n    name: quay.io/scistacks/pangeo  # the chart's default tag otherwise\n"
            "    pullPolicy: Always\n",
            "  image:\n    name: quay.io/scistacks/pangeo  # the chart's default tag otherwise\n"
            "    tag: lock-999999999999\n    pullPolicy: Always\n",
        ),
        (
            "  image:\n    name: quay.io/scistacks/pangeo\n    tag:\n",
            "  image:\n    name: quay.io/scistacks/pangeo\n    tag: lock-999999999999\n",
        ),
        (
            "  image:\n    name: quay.io/scistacks/pangeo\n    tag: ''\n",
            "  image:\n    name: quay.io/scistacks/pangeo\n    tag: 'lock-999999999999'\n",
        ),
        (
            "  image: {name: quay.io/scistacks/pangeo}\n",
            "  image: {name: quay.io/scistacks/pangeo, tag: lock-999999999999}\n",
        ),
    ],
)
def test_name_without_tag(tmp_path, image, expected):
    path = tmp_path / "values.yaml"
    path.write_text("singleuser:\n" + image)
    config = HubConfig.load(path, OURS)
    name_line = 2 if "{" in image else 3
    assert [(r.line, r.tag) for r in config.refs] == [(name_line, None)]
    assert config.rewritten({config.refs[0]: "lock-999999999999"}) == "singleuser:\n" + expected


def test_render_keeps_the_style_and_quotes_what_would_not_read_as_text():
    assert render_scalar("2025.02.03-2", None) == "2025.02.03-2"
    assert render_scalar("2025.02", None) == '"2025.02"'  # plain, it would be a float
    assert render_scalar("123456789012", None) == '"123456789012"'
    assert render_scalar("it's", "'") == "'it''s'"
    assert render_scalar("lock-1", '"') == '"lock-1"'


def test_a_value_over_several_lines_is_refused_not_mangled(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text("singleuser:\n  image: >-\n    quay.io/scistacks/pangeo:lock-111111111111\n")
    config = HubConfig.load(path, OURS)
    with pytest.raises(HubError, match="several lines") as err:
        config.rewritten({config.refs[0]: "lock-999999999999"})
    assert err.value.field == "line 2"
