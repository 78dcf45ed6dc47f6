"""Typed, validated models of hand-written YAML: the small part of a schema library that
specs need.

A model is a frozen dataclass whose annotations say what the YAML may hold: ``str``,
``int``, ``float``, ``bool``, ``X | None`` and other unions, ``list[X]``,
``dict[str, X]``, ``Literal[...]``, ``Annotated[int, Ge(0)]`` and other models.
``Model.validate(mapping)`` checks a mapping against them and collects every problem
(unknown keys, missing fields, wrong types, failed ``@check``s) into one ``Invalid``,
each problem with its location (``("hub", "cpu", "limit")``).

Why not pydantic: building four pydantic models costs a lock process ~0.14 s of its
~0.45 s (importing pydantic and generating its schemas), more than everything else that
sits between start-up and the solve. These specs need a few dozen lines of it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc
    kind: str  # "unknown", "missing", "type", "literal", "value"
    msg: str
    input: Any = None


class Invalid(ValueError):
    """Every problem found in one mapping."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems))
        self.problems = problems

    def errors(self) -> list[Problem]:
        return list(self.problems)


@dataclass(frozen=True)
class Ge:
    bound: int

    def fails(self, value) -> str | None:
        return None if value >= self.bound else f"must be greater than or equal to {self.bound}"


@dataclass(frozen=True)
class Gt:
    bound: int

    def fails(self, value) -> str | None:
        return None if value > self.bound else f"must be greater than {self.bound}"


def check(*fields: str, before: bool = False):
    """Mark a function of a model's body, ``(value) -> None``, that checks ``fields``
    (raising ValueError with the message): after the type is checked or, with ``before``,
    on the raw YAML value."""

    def mark(fn):
        fn.__check__ = (fields, before)
        return staticmethod(fn)

    return mark


class Model:
    """Base of the models: subclasses are ``@dataclass(frozen=True)``."""

    _hints: ClassVar[dict[str, Any]]
    _checks: ClassVar[dict[tuple[str, bool], list]]

    @classmethod
    def _schema(cls):
        if "_hints" not in cls.__dict__:
            cls._hints = typing.get_type_hints(cls, include_extras=True)
            cls._checks = {}
            for klass in reversed(cls.__mro__):
                for raw in vars(klass).values():
                    fn = getattr(raw, "__func__", raw)
                    fields, before = getattr(fn, "__check__", ((), False))
                    for name in fields:
                        cls._checks.setdefault((name, before), []).append(fn)
        return cls._hints, cls._checks

    @classmethod
    def validate(cls, data: Any):
        """An instance from a mapping; raises ``Invalid`` naming every problem."""
        problems: list[Problem] = []
        out = _convert(cls, data, (), problems)
        if problems:
            raise Invalid(problems)
        return out

    @classmethod
    def _from_mapping(cls, data: dict, loc: Loc, problems: list[Problem]):
        hints, checks = cls._schema()
        fields = {f.name: f for f in dataclasses.fields(cls)}
        before = len(problems)
        for key in data:
            if key not in fields:
                problems.append(Problem((*loc, key), "unknown", "unknown key", data[key]))
        values: dict[str, Any] = {}
        for name, f in fields.items():
            if name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    problems.append(Problem((*loc, name), "missing", "required field is missing"))
                continue
            value = data[name]
            where = (*loc, name)
            if not _run_checks(checks.get((name, True), ()), value, where, problems):
                continue
            mark = len(problems)
            value = _convert(hints[name], value, where, problems)
            if len(problems) == mark and _run_checks(
                checks.get((name, False), ()), value, where, problems
            ):
                values[name] = value
        return cls(**values) if len(problems) == before else None

    def dump(self, *, exclude_defaults: bool = False) -> dict:
        """The fields as plain data, in declaration order (models as mappings)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if exclude_defaults and value == _default(f):
                continue
            out[f.name] = _dump(value, exclude_defaults)
        return out


def _default(f: dataclasses.Field):
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _dump(value, exclude_defaults: bool):
    if isinstance(value, Model):
        return value.dump(exclude_defaults=exclude_defaults)
    if isinstance(value, list):
        return [_dump(v, exclude_defaults) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v, exclude_defaults) for k, v in value.items()}
    return value


def _run_checks(fns, value, loc: Loc, problems: list[Problem]) -> bool:
    for fn in fns:
        try:
            fn(value)
        except ValueError as exc:
            problems.append(Problem(loc, "value", str(exc), value))
            return False
    return True


# ---------------------------------------------------------------- one value against a type

_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True}
_BOOL_WORDS |= {"false": False, "no": False, "off": False, "0": False}
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _shown(value) -> str:
    kind = {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value))
    return kind or f"{type(value).__name__} {value!r}"


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, Model):
        return "a mapping"
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is typing.Annotated:
        return _describe(typing.get_args(tp)[0])
    return _TYPE_WORDS.get(tp, str(tp))


def _strictly(tp, value) -> bool:
    """Whether ``value`` already is of ``tp``'s kind (a union's first pass)."""
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if isinstance(tp, type) and issubclass(tp, Model):
        return isinstance(value, dict)
    origin = typing.get_origin(tp)
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in (list, dict):
        return isinstance(value, origin)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return tp is type(value) or (tp is type(None) and value is None)


def _convert(tp, value, loc: Loc, problems: list[Problem]):
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, Model):
        if not isinstance(value, dict):
            return _wrong(tp, value, loc, problems)
        return tp._from_mapping(value, loc, problems)
    if origin is typing.Annotated:
        inner, *constraints = typing.get_args(tp)
        mark = len(problems)
        value = _convert(inner, value, loc, problems)
        for c in constraints if len(problems) == mark else ():
            if msg := c.fails(value):
                problems.append(Problem(loc, "value", msg, value))
                break
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:  # a value of one of the kinds as it is, then the lax readings
            if _strictly(arg, value):
                return _convert(arg, value, loc, problems)
        for arg in args:
            trial: list[Problem] = []
            out = _convert(arg, value, loc, trial)
            if not trial:
                return out
        return _wrong(tp, value, loc, problems)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            shown = ", ".join(repr(a) for a in allowed)
            problems.append(Problem(loc, "literal", f"expected one of {shown}", value))
        return value
    if origin is list:
        if not isinstance(value, list):
            return _wrong(tp, value, loc, problems)
        (item,) = typing.get_args(tp)
        return [_convert(item, v, (*loc, i), problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            return _wrong(tp, value, loc, problems)
        _, item = typing.get_args(tp)  # keys: strings, as YAML mappings of specs have
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                problems.append(Problem((*loc, str(k)), "type", "expected a string key", k))
                continue
            out[k] = _convert(item, v, (*loc, k), problems)
        return out
    return _scalar(tp, value, loc, problems)


def _scalar(tp, value, loc: Loc, problems: list[Problem]):
    if tp is type(None):
        return None if value is None else _wrong(tp, value, loc, problems)
    if tp is str:
        return value if isinstance(value, str) else _wrong(tp, value, loc, problems)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | str) and str(value).strip().lower() in _BOOL_WORDS:
            return _BOOL_WORDS[str(value).strip().lower()]
        return _wrong(tp, value, loc, problems)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        return _wrong(tp, value, loc, problems)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value) if isinstance(value, str) else _wrong(tp, value, loc, problems)
        except ValueError:
            return _wrong(tp, value, loc, problems)
    raise TypeError(f"schema: unsupported type {tp!r}")  # a model's annotation, not input


def _wrong(tp, value, loc: Loc, problems: list[Problem]):
    problems.append(Problem(loc, "type", f"expected {_describe(tp)}, got {_shown(value)}", value))
    return None
