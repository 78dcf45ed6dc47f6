"""The fast lockfile writer must emit exactly what PyYAML's safe_dump would."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from builder.lock import yamlfast

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "lockfile", sorted(REPO.glob("lockfiles/*/conda-lock.yml")), ids=lambda p: p.parent.name
)
def test_same_text_as_pyyaml_on_committed_lockfiles(lockfile):
    data = yaml.safe_load(lockfile.read_text())
    assert yamlfast.dump(data) == yaml.safe_dump(data, sort_keys=False, width=1000)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "true",
        "no",
        "1.0",
        "4.5",
        "0x10",
        "~",
        "null",
        "-",
        "- x",
        ":x",
        "a: b",
        "a #b",
        "#c",
        "!=1.2",
        ">=3.1",
        "<3,>=1.10",
        "==5.4.6 pyh_0",
        "*",
        "it's",
        "x\ny",
        "trailing ",
        "@at",
        "%p",
        "[1]",
        "{a}",
        "é",
    ],
)
def test_tricky_scalars_round_trip_like_pyyaml(value):
    data = {"k": value, "l": [value, {"n": value}], "e": [], "d": {}, "b": False, "none": None}
    text = yamlfast.dump(data)
    assert yaml.safe_load(text) == data


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "zlib", "dependencies": {}, "hash": {"md5": "00", "sha256": "11"}},
        {"name": "x", "dependencies": {"python": ">=3.8,<4", "libzlib": "*"}, "optional": False},
        {"a": {"b": {"c": 1}}},  # deeper than an entry: the general writer
        {"a": [1, "two"], "b": None},
        {"quoted": "yes", "number": "1.0", "colon": "a: b", "quote": "'q"},
        {},
    ],
)
def test_one_entry_is_written_as_dump_writes_it_in_a_list(entry):
    assert yamlfast.dump_item(entry) == yaml.safe_dump([entry], sort_keys=False, width=1000)


@pytest.mark.parametrize(
    "lockfile", sorted(REPO.glob("lockfiles/*/conda-lock.yml")), ids=lambda p: p.parent.name
)
def test_every_committed_entry_is_written_as_pyyaml_writes_it(lockfile):
    data = yaml.load(lockfile.read_text(), Loader=yaml.CSafeLoader)
    for entry in data["package"]:
        want = yaml.safe_dump([entry], sort_keys=False, width=1000)
        assert yamlfast.dump_item(entry) == want
