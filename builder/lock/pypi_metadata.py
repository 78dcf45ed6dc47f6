"""The target of a PyPI step, and the dependencies of the wheels uv chose.

uv's pylock output names each package's files but not its dependencies, which
conda-lock's ``manager: pip`` entries carry (``{name: specifier}``). They are read from
each wheel's core metadata (PEP 658 ``URL.metadata``, else the wheel itself; a mapped
index's folder is read directly), with ``Requires-Dist`` markers evaluated for the
target and the extras asked for.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.parser import HeaderParser

from packaging import tags
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from builder.errors import LockError
from builder.lock.pypi_server import core_metadata

# conda platform -> (uv's --python-platform family, platform_machine, sys_platform)
PLATFORMS = {
    "linux-64": ("x86_64-manylinux", "x86_64", "linux"),
    "linux-aarch64": ("aarch64-manylinux", "aarch64", "linux"),
    "osx-64": ("x86_64-apple-darwin", "x86_64", "darwin"),
    "osx-arm64": ("aarch64-apple-darwin", "arm64", "darwin"),
    "win-64": ("x86_64-pc-windows-msvc", "AMD64", "win32"),
}
MANYLINUX = (17, 40)  # the glibc minors uv names as x86_64-manylinux_2_NN
TIMEOUT = 30  # seconds for one metadata request


@dataclass(frozen=True)
class Target:
    """The machine the PyPI packages install on: a platform, a Python, a glibc."""

    platform: str
    python: str  # "3.12.11" from conda, or pip_python's "3.11"
    glibc: str = "2.28"

    def __post_init__(self):
        if self.platform not in PLATFORMS:
            raise LockError(
                f"the PyPI step cannot target {self.platform} (uv knows no such platform)"
            )

    @property
    def python_minor(self) -> tuple[int, int]:
        major, minor = self.python.split(".")[:2]
        return int(major), int(minor)

    @property
    def glibc_minor(self) -> int:
        minor = int(self.glibc.split(".")[1]) if "." in self.glibc else MANYLINUX[0]
        return max(MANYLINUX[0], min(MANYLINUX[1], minor))

    @property
    def uv_platform(self) -> str:
        family, _, _ = PLATFORMS[self.platform]
        return f"{family}_2_{self.glibc_minor}" if family.endswith("manylinux") else family

    def tag_priority(self) -> dict[tags.Tag, int]:
        """Wheel tag -> rank (0 best), in the order pip and uv prefer them."""
        _, machine, system = PLATFORMS[self.platform]
        if system == "linux":
            lowest = 5 if machine == "x86_64" else 17
            legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
            plats = []
            for minor in range(self.glibc_minor, lowest - 1, -1):
                plats.append(f"manylinux_2_{minor}_{machine}")
                if minor in legacy:
                    plats.append(f"{legacy[minor]}_{machine}")
            plats.append(f"linux_{machine}")
        elif system == "darwin":
            plats = list(tags.mac_platforms((11, 0), machine))
        else:
            plats = ["win_amd64"]
        version = self.python_minor
        abi = f"cp{version[0]}{version[1]}"
        order = [
            *tags.cpython_tags(version, [abi], plats),
            *tags.compatible_tags(version, abi, plats),
        ]
        return {tag: i for i, tag in reversed(list(enumerate(order)))}

    def markers(self) -> dict[str, str]:
        _, machine, system = PLATFORMS[self.platform]
        full = self.python if self.python.count(".") >= 2 else f"{self.python}.0"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "nt" if system == "win32" else "posix",
            "platform_machine": machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[system],
            "platform_version": "",
            "python_full_version": full,
            "python_version": ".".join(full.split(".")[:2]),
            "sys_platform": system,
        }


def fetch_metadata(url: str) -> bytes:
    """A remote file's core metadata: PEP 658's ``URL.metadata``, else from the file."""
    try:
        with urllib.request.urlopen(url + ".metadata", timeout=TIMEOUT) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise LockError(f"cannot read the metadata of {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise LockError(f"cannot read the metadata of {url}: {exc}") from None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise LockError(f"cannot read {url}: {exc}") from None
    metadata = core_metadata(data, url.rsplit("/", 1)[-1].split("#", 1)[0])
    if metadata is None:
        raise LockError(f"no METADATA in {url}")
    return metadata


def requires_dist(metadata: bytes) -> list[Requirement]:
    message = HeaderParser().parsestr(metadata.decode("utf-8", errors="replace"))
    out = []
    for line in message.get_all("Requires-Dist") or []:
        try:
            out.append(Requirement(line))
        except Exception:
            continue  # a malformed line in someone's wheel: uv skipped it too
    return out


def _applies(req: Requirement, env: dict[str, str], extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**env, "extra": e}) for e in ("", *sorted(extras)))


def dependencies(
    urls: dict[str, str],
    roots: Iterable[Requirement],
    known: set[str],
    target: Target,
    read: Callable[[str], bytes],
) -> dict[str, dict[str, str]]:
    """name -> {dependency: specifier} for each package (name -> file URL) uv chose.

    A requirement counts when its marker holds on the target with the extras asked of
    its package (by ``roots`` or by another package); only names in ``known`` (the
    resolved set and what conda provides) are kept."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        metadata = dict(zip(urls, pool.map(read, urls.values()), strict=True))
    reqs = {name: requires_dist(data) for name, data in metadata.items()}
    env = target.markers()
    extras: dict[str, set[str]] = {name: set() for name in urls}
    expanded: set[str] = set()
    todo = [r for r in roots if _applies(r, env, set())]
    while todo:  # extras only grow: this ends
        req = todo.pop()
        name = canonicalize_name(req.name)
        new = set(req.extras) - extras.get(name, set())
        if name not in reqs or (name in expanded and not new):
            continue
        extras[name] |= new
        expanded.add(name)
        todo += [r for r in reqs[name] if _applies(r, env, extras[name])]
    out: dict[str, dict[str, str]] = {}
    for name, lines in reqs.items():
        deps: dict[str, list[str]] = {}
        for r in lines:
            dep = canonicalize_name(r.name)
            if dep in known and dep != name and _applies(r, env, extras[name]):
                deps.setdefault(dep, [])
                if str(r.specifier):
                    deps[dep].append(str(r.specifier))
        out[name] = {d: ",".join(sorted(set(s))) or "*" for d, s in sorted(deps.items())}
    return out
