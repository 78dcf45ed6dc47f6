"""conda-lock's platform selectors on environment.yml lines: ``- pywin32  # [win]``.

A selector is an expression of platform words (``linux``, ``linux64``, ``aarch64``,
``osx``, ``arm64``, ``win``, ``unix``, ...) with ``not``, ``and``, ``or`` and parentheses.
"""

from __future__ import annotations

import re

from builder.errors import SpecError

WORDS: dict[str, set[str]] = {
    "linux-64": {"linux", "linux64", "unix", "x86_64", "x86"},
    "linux-aarch64": {"linux", "aarch64", "linux_aarch64", "unix"},
    "linux-ppc64le": {"linux", "ppc64le", "linux_ppc64le", "unix"},
    "osx-64": {"osx", "osx64", "unix", "x86_64", "x86"},
    "osx-arm64": {"osx", "arm64", "osx_arm64", "unix"},
    "win-64": {"win", "win64", "x86_64", "x86"},
}
KNOWN_WORDS = set().union(*WORDS.values()) | {"win32", "ppc64", "s390x", "armv7l"}
_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z_][A-Za-z0-9_]*)")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"unexpected {text[pos:].strip()!r}")
        out.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _evaluate(tokens: list[str], words: set[str]) -> bool:
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def atom() -> bool:
        tok = peek()
        if tok is None:
            raise ValueError("unexpected end")
        if tok == "not":
            take()
            return not atom()
        if tok == "(":
            take()
            value = either()
            if peek() != ")":
                raise ValueError("missing ')'")
            take()
            return value
        if tok in ("and", "or", ")"):
            raise ValueError(f"unexpected {tok!r}")
        take()
        if tok not in KNOWN_WORDS:
            raise ValueError(f"unknown selector {tok!r}")
        return tok in words

    def both() -> bool:
        value = atom()
        while peek() == "and":
            take()
            value = atom() and value
        return value

    def either() -> bool:
        value = both()
        while peek() == "or":
            take()
            value = both() or value
        return value

    result = either()
    if pos != len(tokens):
        raise ValueError(f"unexpected {tokens[pos]!r}")
    return result


def selected_platforms(selector: str, platforms, shown: str, field: str) -> list[str]:
    """The platforms (of ``platforms``) a selector keeps a line for."""
    try:
        tokens = _tokens(selector)
        if not tokens:
            raise ValueError("empty selector")
        return [p for p in platforms if _evaluate(tokens, WORDS.get(p, set()))]
    except ValueError as exc:
        raise SpecError(
            f"invalid platform selector [{selector}]: {exc} (expected e.g. linux64, osx, win, "
            "not win)",
            file=shown,
            field=field,
        ) from None
