"""builder/spec/schema.py: the validating dataclasses the spec models are made of."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Literal

import pytest

from builder.spec.schema import Ge, Invalid, Model, check


@dataclass(frozen=True)
class Inner(Model):
    size: str | float | None = None
    flag: bool = False


@dataclass(frozen=True)
class Outer(Model):
    name: str
    count: Annotated[int, Ge(1)] = 1
    kind: Literal["a", "b"] = "a"
    items: list[str | Inner] = field(default_factory=list)
    labels: dict[str, str | int] = field(default_factory=dict)
    inner: Inner | None = None

    @check("name")
    def _lower(value):
        if value != value.lower():
            raise ValueError(f"{value!r} is not lowercase")

    @check("count", before=True)
    def _not_text(value):
        if isinstance(value, str) and not value.isdigit():
            raise ValueError("a count is a number")


def problems(data) -> list[tuple]:
    with pytest.raises(Invalid) as info:
        Outer.validate(data)
    return [(p.loc, p.kind) for p in info.value.errors()]


def test_valid_data_gives_the_dataclass_with_its_defaults():
    got = Outer.validate({"name": "x", "items": ["a", {"size": 2}], "inner": {"flag": "yes"}})
    assert got == Outer(name="x", items=["a", Inner(size=2.0)], inner=Inner(flag=True))
    assert got.labels == {} and got.count == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.name = "y"  # type: ignore[misc]


def test_unions_take_a_value_of_their_own_kinds_first():
    # an int is a number before it is anything else (str | float: 2 -> 2.0, as YAML wrote it)
    assert Outer.validate({"name": "x", "inner": {"size": 2}}).inner.size == 2.0
    assert Outer.validate({"name": "x", "inner": {"size": "4G"}}).inner.size == "4G"
    assert Outer.validate({"name": "x", "labels": {"a": 1, "b": "c"}}).labels == {"a": 1, "b": "c"}


def test_lax_scalars_and_their_limits():
    assert Outer.validate({"name": "x", "count": 3.0}).count == 3
    assert Outer.validate({"name": "x", "count": "7"}).count == 7
    assert problems({"name": "x", "count": 1.5}) == [(("count",), "type")]
    assert problems({"name": "x", "count": True}) == [(("count",), "type")]
    assert problems({"name": "x", "inner": {"flag": "maybe"}}) == [(("inner", "flag"), "type")]


def test_every_problem_is_collected_with_its_location():
    got = problems(
        {
            "name": "X",
            "count": 0,
            "kind": "c",
            "items": ["ok", 5, {"size": 1, "colour": "red"}],
            "labels": {"a": [1]},
            "extra": 1,
        }
    )
    assert set(got) == {
        (("extra",), "unknown"),
        (("name",), "value"),
        (("count",), "value"),
        (("kind",), "literal"),
        (("items", 1), "type"),
        (("items", 2, "colour"), "unknown"),
        (("labels", "a"), "type"),
    }
    assert problems({}) == [(("name",), "missing")]
    assert problems({"name": "x", "count": "many"}) == [(("count",), "value")]  # before the type


def test_messages_say_what_was_expected_and_what_was_found():
    with pytest.raises(Invalid) as info:
        Outer.validate({"name": "x", "items": "a", "count": 0})
    by_loc = {p.loc: p.msg for p in info.value.errors()}
    assert by_loc[("items",)] == "expected a list, got str 'a'"
    assert by_loc[("count",)] == "must be greater than or equal to 1"
    assert "items: expected a list" in str(info.value)


def test_dump_leaves_out_defaults_at_every_level():
    got = Outer.validate({"name": "x", "inner": {"size": "1G"}, "labels": {"a": 1}})
    assert got.dump(exclude_defaults=True) == {
        "name": "x",
        "labels": {"a": 1},
        "inner": {"size": "1G"},
    }
    assert list(got.dump()) == ["name", "count", "kind", "items", "labels", "inner"]


def test_an_annotation_the_schema_cannot_read_is_a_programming_error():
    @dataclass(frozen=True)
    class Odd(Model):
        when: complex = 0j

    with pytest.raises(TypeError, match="unsupported type"):
        Odd.validate({"when": 1})
