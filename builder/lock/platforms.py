"""Virtual packages per platform: what a solve assumes about the machine it targets.

Defaults follow what conda-forge images are built for: glibc 2.28 (manylinux_2_28) and a
5.x kernel. A spec's ``virtual_packages`` overrides or adds (``__cuda: "12.0"``), so a GPU
environment locks on a CPU-only machine.
"""

from __future__ import annotations

from rattler import BuildString, GenericVirtualPackage, PackageName, Version

from builder.errors import LockError

ARCHSPEC = {
    "linux-64": "x86_64",
    "linux-aarch64": "aarch64",
    "linux-ppc64le": "ppc64le",
    "osx-64": "x86_64",
    "osx-arm64": "arm64",
    "win-64": "x86_64",
}

DEFAULTS = {
    "linux": {"__unix": "0", "__linux": "5.15", "__glibc": "2.28"},
    "osx": {"__unix": "0", "__osx": "11.0"},
    "win": {"__win": "0"},
}


def virtual_packages(platform: str, declared: dict[str, str]) -> list[GenericVirtualPackage]:
    family = platform.split("-", 1)[0]
    values = dict(DEFAULTS[family])
    for name, version in declared.items():
        # __glibc only makes sense on linux: a spec for several OSes may carry it anyway
        if name == "__glibc" and family != "linux":
            continue
        values[name] = version
    out = [
        GenericVirtualPackage(
            PackageName("__archspec"), Version("1"), BuildString(ARCHSPEC[platform])
        )
    ]
    for name, version in sorted(values.items()):
        try:
            out.append(
                GenericVirtualPackage(PackageName(name), Version(str(version)), BuildString("0"))
            )
        except Exception as exc:
            raise LockError(
                f"invalid virtual package {name}={version!r}: {exc}", field="virtual_packages"
            ) from None
    return out
