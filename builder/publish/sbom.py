"""The CycloneDX SBOM attached to each image, made from the lock alone.

- one component per package and platform, with conda purls as the purl spec defines them:
  ``pkg:conda/NAME@VERSION?build=…&channel=…&subdir=…&type=conda|tar.bz2`` (conda purls
  have no namespace; the channel is a qualifier); each locked PyPI wheel as
  ``pkg:pypi/NAME@VERSION``, with its sha256;
- the lock's dependency graph: each package ``dependsOn`` the locked packages its
  ``depends`` name on the same platform (a wheel: the locked wheels it requires, and the
  conda packages that install the other PyPI projects it requires); the image depends on
  the packages nothing else depends on, so every package is reachable from it;
- reproducible: the same lock gives the same bytes. The serial number is a UUID derived
  from the lock hash, and the timestamp comes from ``SOURCE_DATE_EPOCH`` (omitted without it).
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from datetime import UTC, datetime

from builder.lock import pypi_names
from builder.lock.channels import channel_name
from builder.lock.model import LockedDistribution, LockedPackage, PypiPackage

# uuid5 namespace of scistacks SBOM serial numbers (itself uuid5(NAMESPACE_URL, "scistacks:sbom"))
SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "scistacks:sbom")


def serial_number(locked: LockedDistribution) -> uuid.UUID:
    return uuid.uuid5(SERIAL_NAMESPACE, f"{locked.name}\n{locked.lock_hash()}")


def package_type(p: LockedPackage) -> str:
    return "conda" if p.file_name.endswith(".conda") else "tar.bz2"


def purl(p: LockedPackage, platform: str):
    from packageurl import PackageURL

    qualifiers = {
        "build": p.build,
        "channel": channel_name(p.channel),
        "subdir": p.subdir or platform,
        "type": package_type(p),
    }
    return PackageURL(type="conda", name=p.name, version=p.version, qualifiers=qualifiers)


def pypi_purl(w: PypiPackage):
    from packageurl import PackageURL

    return PackageURL(type="pypi", name=w.name, version=w.version)


def _timestamp() -> datetime | None:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch.isdigit():
        return None
    return datetime.fromtimestamp(int(epoch), tz=UTC)


def sbom_json(locked: LockedDistribution) -> str:
    """CycloneDX 1.5 JSON of the lock."""
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot5

    bom = Bom(serial_number=serial_number(locked))
    bom.metadata.timestamp = _timestamp()
    root = Component(
        name=locked.name,
        version=locked.lock_hash()[:12],
        type=ComponentType.CONTAINER,
        bom_ref=f"image/{locked.name}",
    )
    bom.metadata.component = root
    top_level: list[Component] = []
    for plat in sorted(locked.packages):
        components: dict[str, Component] = {}
        for p in locked.packages[plat]:
            hashes = []
            if p.sha256:
                hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=p.sha256))
            if p.md5:
                hashes.append(HashType(alg=HashAlgorithm.MD5, content=p.md5))
            components[p.name] = Component(
                name=p.name,
                version=p.version,
                type=ComponentType.LIBRARY,
                purl=purl(p, plat),
                hashes=hashes,
                bom_ref=f"{plat}/{p.file_name}",
            )
        depends = {
            p.name: {d.split()[0] for d in p.depends if d.strip()} for p in locked.packages[plat]
        }
        top_level += _graph(bom, components, depends)
        provided = {
            name: components[p.conda.name]
            for name, p in pypi_names.provided(locked.packages[plat]).items()
        }
        top_level += _pypi_components(bom, locked.pypi.get(plat, []), plat, provided)
    bom.register_dependency(root, top_level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's own advice, e.g. on missing licenses
        return JsonV1Dot5(bom).output_as_string(indent=2)


def _graph(
    bom, components: dict, depends: dict[str, set[str]], outside: dict | None = None
) -> list:
    """Add ``components`` with their ``dependsOn`` among themselves (and on ``outside``
    components, by dependency name); return those nothing else here depends on."""
    needed: set[str] = set()
    outside = outside or {}
    for name, component in components.items():
        bom.components.add(component)
        deps = depends[name] & (components.keys() - {name})
        needed |= deps
        others = [outside[d] for d in sorted(depends[name] - components.keys()) if d in outside]
        bom.register_dependency(component, [components[d] for d in sorted(deps)] + others)
    return [c for name, c in components.items() if name not in needed]


def _pypi_components(bom, wheels: list[PypiPackage], plat: str, provided: dict) -> list:
    """Add the platform's wheels and their graph (``provided``: PyPI name -> the conda
    component installing it); return those no other wheel requires."""
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.component import Component, ComponentType

    components = {
        w.name: Component(
            name=w.name,
            version=w.version,
            type=ComponentType.LIBRARY,
            purl=pypi_purl(w),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=w.sha256)],
            bom_ref=f"{plat}/pypi/{w.file_name}",
        )
        for w in wheels
    }
    depends = {w.name: {_requirement_name(d) for d in w.depends if d.strip()} for w in wheels}
    return _graph(bom, components, depends, provided)


def _requirement_name(requirement: str) -> str:
    """The PEP 503 name a requirement (``demo-lib >=1.0``) starts with."""
    from packaging.utils import canonicalize_name

    return canonicalize_name(re.match(r"[A-Za-z0-9._-]*", requirement.strip()).group())
