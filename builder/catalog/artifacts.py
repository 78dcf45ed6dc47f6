"""Stage 8 (catalog). Reads what publish and release attach to a released image (the
CycloneDX SBOM, the smoke summary, the profile snippet) and the image's platform
manifests, through ``builder.registry``'s client; writes nothing.

Every reader either returns a value or raises ``Damaged`` with a short reason, which the
catalog turns into one warning line naming the release's tag.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from builder.errors import PublishError
from builder.lock.model import LockedDistribution, LockedPackage
from builder.profiles import PROFILE_TYPE
from builder.publish import SBOM_TYPE, SMOKE_TYPE
from builder.registry import DOCKER_LIST, OCI_INDEX, Registry

WANTED = {SBOM_TYPE: "SBOM", SMOKE_TYPE: "smoke summary", PROFILE_TYPE: "profile snippet"}
SMOKE_HEADER = re.compile(r"\A# Smoke tests: \S+\s*\n")
SMOKE_VERDICT = re.compile(r"^\*\*(passed|FAILED)\b", re.M)
SMOKE_PLATFORM = re.compile(r"^## (\S+/\S+): (passed|FAILED)\s*$", re.M)


class Damaged(ValueError):
    """An attached artifact that cannot be read (the reason, in a few words)."""


@dataclass
class Smoke:
    passed: bool
    platforms: dict[str, bool] = field(default_factory=dict)  # linux/amd64 -> passed


def platform_sizes(client: Registry, repository: str, raw: bytes) -> dict[str, int]:
    """linux/amd64 -> bytes to pull (config + compressed layers), from an image index."""
    doc = json.loads(raw)
    out: dict[str, int] = {}
    entries = doc.get("manifests") if isinstance(doc, dict) else None
    if not entries:  # a single-platform image
        return {}
    for entry in entries:
        plat = entry.get("platform") or {}
        if plat.get("os") in (None, "unknown"):
            continue  # attestations, not a platform
        found = client.manifest(repository, entry["digest"])
        if found is None:
            continue
        manifest = json.loads(found[0])
        size = (manifest.get("config") or {}).get("size", 0)
        size += sum(layer.get("size", 0) for layer in manifest.get("layers") or [])
        out[f"{plat.get('os')}/{plat.get('architecture')}"] = size
    return dict(sorted(out.items()))


def is_index(media: str, raw: bytes) -> bool:
    return media in (OCI_INDEX, DOCKER_LIST) or b'"manifests"' in raw


def fetch(client: Registry, repository: str, digest: str) -> dict[str, dict[str, bytes]]:
    """artifactType -> {file name -> bytes} of the artifacts the catalog reads; an artifact
    that cannot be fetched maps to ``{}`` (so the caller can say it is damaged)."""
    out: dict[str, dict[str, bytes]] = {}
    for ref in client.referrers(repository, digest):
        kind = ref.get("artifactType")
        if kind not in WANTED or kind in out:
            continue
        files: dict[str, bytes] = {}
        try:
            found = client.manifest(repository, ref["digest"])
            layers = json.loads(found[0]).get("layers") or [] if found else []
            for layer in layers:
                title = (layer.get("annotations") or {}).get("org.opencontainers.image.title")
                files[title or layer["digest"]] = client.blob(repository, layer["digest"])
        except (PublishError, ValueError, LookupError, TypeError, AttributeError):
            files = {}
        out[kind] = files
    return out


def _one(files: dict[str, bytes], suffix: str = "") -> bytes:
    if not files:
        raise Damaged("its content cannot be read from the registry")
    for name, data in sorted(files.items()):
        if name.endswith(suffix):
            return data
    raise Damaged(f"no {suffix} file in it")


def sbom_lock(files: dict[str, bytes], name: str) -> LockedDistribution:
    """The lock a release was built from, as its SBOM lists it (one component per
    package and platform, ``bom-ref`` = ``PLATFORM/FILE``)."""
    try:
        doc = json.loads(_one(files, ".json"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Damaged(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise Damaged("not a CycloneDX document")
    packages: dict[str, list[LockedPackage]] = {}
    for comp in doc.get("components") or []:
        try:
            platform, _, file_name = comp["bom-ref"].partition("/")
            purl = comp["purl"]
            quals = dict(q.split("=", 1) for q in purl.partition("?")[2].split("&") if "=" in q)
            hashes = {h["alg"]: h["content"] for h in comp.get("hashes") or []}
            packages.setdefault(platform, []).append(
                LockedPackage(
                    name=comp["name"],
                    version=comp["version"],
                    build=quals.get("build", ""),
                    platform=platform,
                    url=file_name,
                    md5=hashes.get("MD5", ""),
                    sha256=hashes.get("SHA-256", ""),
                    subdir=quals.get("subdir", ""),
                )
            )
        except (KeyError, TypeError, AttributeError, ValueError):
            raise Damaged("a component without name, version, purl or bom-ref") from None
    if not packages:
        raise Damaged("no components")
    for plat in packages:
        packages[plat].sort(key=lambda p: p.name)
    return LockedDistribution(name, tuple(sorted(packages)), (), packages, "")


def smoke_summary(files: dict[str, bytes]) -> Smoke:
    """The verdict of ``summary.md`` as smoke (or collect) writes it."""
    try:
        text = _one(files, ".md").decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged("not UTF-8 text") from None
    verdict = SMOKE_VERDICT.search(text)
    if not SMOKE_HEADER.match(text) or verdict is None:
        raise Damaged("not a smoke summary")
    platforms = {m.group(1): m.group(2) == "passed" for m in SMOKE_PLATFORM.finditer(text)}
    return Smoke(verdict.group(1) == "passed", platforms)


def profile_snippet(files: dict[str, bytes]) -> str:
    """The z2jh ``profileList`` snippet attached by release."""
    try:
        text = _one(files, "z2jh.yaml").decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged("not UTF-8 text") from None
    if not text.strip():
        raise Damaged("empty")
    return text
