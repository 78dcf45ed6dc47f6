"""The locked PyPI wheels of one platform as a pip requirements file.

Explicit ``conda-PLATFORM.lock`` files cannot hold PyPI packages, so the lock stage writes
``pip-PLATFORM.txt`` beside them, and the repo2docker context installs the same lines:
every wheel by URL with its sha256, installed with ``--no-deps`` (the lock is the whole
dependency set) and ``--require-hashes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from builder.lock.model import PypiPackage

INSTALL = "pip install --no-deps --require-hashes -r {file}"


def file_name(platform: str) -> str:
    """``pip-linux-64.txt``: the explicit PyPI file beside ``conda-linux-64.lock``."""
    return f"pip-{platform}.txt"


def requirement_line(package: PypiPackage, url: str | None = None) -> str:
    """``name @ URL --hash=sha256:HEX``: one exact wheel, checked by pip."""
    return f"{package.name} @ {url or package.url} --hash=sha256:{package.sha256}"


def requirements_txt(
    entries: Iterable[PypiPackage],
    *,
    header: Iterable[str] = (),
    file: str = "this file",
    url: Callable[[PypiPackage], str] | None = None,
) -> str:
    """The requirements text: comment lines (``header``, then how to install ``file``),
    then one line per wheel, sorted by name. ``url`` gives where a wheel is read from
    (default: its locked URL), e.g. a path inside a build context."""
    lines = [f"# {h}" for h in header]
    lines.append(f"# Install: {INSTALL.format(file=file)}")
    for p in sorted(entries, key=lambda p: p.name):
        lines.append(requirement_line(p, url(p) if url else None))
    return "\n".join(lines) + "\n"


def parse_requirements(text: str) -> set[tuple[str, str, str]]:
    """(name, URL, sha256) of each requirement line (comments and blanks skipped): what
    ``lock --check`` compares with conda-lock.yml."""
    out = set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        req, _, digest = line.partition(" --hash=sha256:")
        name, _, url = req.partition(" @ ")
        out.add((name.strip(), url.strip(), digest.strip()))
    return out
