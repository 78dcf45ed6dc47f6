"""Reading hand-written YAML with errors that name the file and the line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from builder.errors import ScistacksError

_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_FAST_LOADER):
    """A SafeLoader (libyaml's parser when PyYAML has it) that refuses duplicate keys:
    PyYAML silently keeps the last one."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "found an unhashable key (a list or mapping)", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(
    path: str | os.PathLike,
    *,
    shown_as: str | None = None,
    error=ScistacksError,
    machine_written: bool = False,
) -> Any:
    """Parse a YAML file; any problem becomes one ``error`` naming the file (and line).

    ``machine_written`` files (lockfiles) skip the duplicate-key check for libyaml's speed.
    """
    shown = shown_as or os.fspath(path)
    text = read_text(path, shown, error)
    try:
        loader = _FAST_LOADER if machine_written else _UniqueKeyLoader  # both SafeLoaders
        data = yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = exc.problem or exc.context or "invalid YAML"
        if "nesting depth" in problem:  # newer libyaml stops at 1000 levels itself
            raise error(NESTED_TOO_DEEPLY, file=shown, field=where) from None
        raise error(f"invalid YAML: {problem}", file=shown, field=where) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", file=shown) from None
    except RecursionError:
        raise error(NESTED_TOO_DEEPLY, file=shown) from None
    except ValueError as exc:  # a scalar YAML resolves but cannot build: 2025-02-30
        raise error(f"invalid YAML value: {exc}", file=shown) from None
    if not machine_written and _too_deep(data):
        raise error(NESTED_TOO_DEEPLY, file=shown)
    return data


# libyaml parses any depth; what reads a config walks it recursively, so a config file
# nested deeper than any real one is refused here, in one line.
MAX_DEPTH = 64


def _too_deep(data) -> bool:
    todo = [(data, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return True
            items = value.values() if isinstance(value, dict) else value
            todo += [(v, depth + 1) for v in items]
    return False


NESTED_TOO_DEEPLY = "nested too deeply to be a config file (lists or mappings inside each other)"


def read_text(path: str | os.PathLike, shown: str, error=ScistacksError) -> str:
    """A config file's text, or one ``error`` naming it: missing, a directory, binary or
    not UTF-8."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise error("file not found", file=shown) from None
    except IsADirectoryError:
        raise error("is a directory, not a file", file=shown) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", file=shown) from None
    if b"\x00" in raw:
        raise error("not a text file (binary content)", file=shown)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error("not UTF-8 text", file=shown) from None
