"""A small, fast block-style YAML writer for lockfiles.

PyYAML's pure-Python emitter spends seconds on a few thousand locked packages. Lockfiles
only hold mappings, lists, strings, numbers, booleans and nulls, so this writer emits the
same text PyYAML's ``safe_dump(sort_keys=False)`` would, in a fraction of the time. Tests
check the two agree on every committed lockfile.
"""

from __future__ import annotations

import functools
import re

import yaml

_RESOLVER = yaml.resolver.Resolver()
_PLAIN = re.compile(r"^[A-Za-z0-9_./(<=][A-Za-z0-9_.+\-/:=<>*,!()~ ^|$]*$")
_STR_TAG = "tag:yaml.org,2002:str"


def _scalar(value) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value)
    return _string(str(value))


@functools.lru_cache(maxsize=65536)  # lockfiles repeat the same strings thousands of times
def _string(text: str) -> str:
    if (
        text
        and _PLAIN.match(text)
        and not text.endswith((" ", ":"))
        and ": " not in text
        and " #" not in text
        and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG
    ):
        return text
    if "\n" in text or any(ord(c) < 32 for c in text):
        return yaml.safe_dump(text, width=10**9).removesuffix("\n...\n").rstrip("\n")
    return "'" + text.replace("'", "''") + "'"


def _emit(value, indent: str, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            head = f"{indent}{_scalar(key)}:"
            if isinstance(item, dict) and item:
                out.append(head)
                _emit(item, indent + "  ", out)
            elif isinstance(item, list) and item:
                out.append(head)
                _emit(item, indent, out)
            else:
                out.append(f"{head} {_inline(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                sub: list[str] = []
                _emit(item, indent + "  ", sub)
                sub[0] = f"{indent}- " + sub[0][len(indent) + 2 :]
                out.extend(sub)
            elif isinstance(item, list) and item:
                sub = []
                _emit(item, indent + "  ", sub)
                sub[0] = f"{indent}- " + sub[0][len(indent) + 2 :]
                out.extend(sub)
            else:
                out.append(f"{indent}- {_inline(item)}")


def _inline(value) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def dump(data: dict) -> str:
    out: list[str] = []
    _emit(data, "", out)
    return "\n".join(out) + "\n"


def dump_item(value: dict) -> str:
    """One entry of a top-level list, exactly as ``dump`` writes it inside that list.

    A lockfile's entries are mappings of scalars and of mappings of scalars (``hash``,
    ``dependencies``), thousands of them: those are written here directly."""
    lines: list[str] = []
    for key, item in value.items():
        head = f"  {_text(key)}:"
        if isinstance(item, dict) and item:
            if any(isinstance(v, dict | list) for v in item.values()):
                return _item(value)
            lines.append(head)
            lines += [_pair(k, v) for k, v in item.items()]
        elif isinstance(item, list) and item:
            return _item(value)
        else:
            lines.append(f"{head} {_text(item)}")
    if not lines:
        return _item(value)
    lines[0] = "- " + lines[0][2:]
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=65536)  # "    python: '>=3.10'": thousands of entries share it
def _pair(key, value) -> str:
    return f"    {_text(key)}: {_text(value)}"


def _text(value) -> str:
    return _string(value) if type(value) is str else _inline(value)


def _item(value) -> str:
    out: list[str] = []
    _emit([value], "", out)
    return "\n".join(out) + "\n"
