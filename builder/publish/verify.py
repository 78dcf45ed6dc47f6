"""``scistacks verify``: is this image signed by the key or identity a hub admin trusts?

The reference is resolved to its digest through the registry first (a tag can move; the
signature names a digest), then cosign checks the signature of that digest, of each
platform manifest a manifest list holds, and the signed SBOM attestation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from builder.errors import PublishError
from builder.publish.cosign import Identity, verify
from builder.publish.signing import SBOM_PREDICATE
from builder.registry import Reference, Registry


@dataclass(frozen=True)
class Result:
    verified: bool
    line: str  # the one-line verdict


def reference_for(target: str, registry: str) -> Reference:
    """``NAME[:TAG]`` under ``registry``, or a full ``HOST/NS/NAME[:TAG][@DIGEST]``."""
    text = target if "/" in target else f"{registry.rstrip('/')}/{target}"
    ref = Reference.parse(text)
    if not ref.tag and not ref.digest:
        ref = ref.with_tag("latest")
    return ref


def resolve(ref: Reference) -> tuple[str, list[tuple[str, str]]]:
    """(digest, [(platform, digest)…]) of what ``ref`` names now; one line if nothing."""
    client = Registry(ref.host, timeout=10.0)
    found = client.manifest(ref.repository, ref.digest or ref.tag)
    if found is None:
        raise PublishError(f"{ref} does not exist in the registry")
    raw, _, digest = found
    if ref.digest and digest != ref.digest:
        raise PublishError(f"{ref}: the registry serves {digest}, not the digest asked for")
    try:
        manifests = json.loads(raw).get("manifests") or []
    except (ValueError, AttributeError):
        manifests = []
    children = [
        (f"{m['platform'].get('os')}/{m['platform'].get('architecture')}", m["digest"])
        for m in manifests
        if isinstance(m, dict) and (m.get("platform") or {}).get("os") not in (None, "unknown")
    ]
    return digest, children


def verify_image(target: str, registry: str, identity: Identity) -> Result:
    ref = reference_for(target, registry)
    digest, children = resolve(ref)
    repo = f"{ref.host}/{ref.repository}"
    shown = f"{ref}@{digest}" if not ref.digest else str(ref)
    verdict = verify(f"{repo}@{digest}", identity)
    if not verdict.verified:
        return Result(False, f"not verified: {shown}: {verdict.reason}")
    for platform, child in children:
        got = verify(f"{repo}@{child}", identity)
        if not got.verified:
            return Result(False, f"not verified: {shown}: its {platform} manifest: {got.reason}")
    attested = verify(f"{repo}@{digest}", identity, attestation=SBOM_PREDICATE).verified
    parts = [f"verified: {shown} signed by {verdict.signer}"]
    if children:
        parts.append(f"{len(children)} platform manifest(s) signed")
    parts.append("SBOM attested" if attested else "no signed SBOM attestation")
    return Result(True, "; ".join(parts))
