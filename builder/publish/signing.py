"""The sign step of publish (``--sign``): cosign signatures on the manifest list and on
each platform manifest, by digest, and the CycloneDX SBOM as a signed attestation.

Where it sits in publish, and why:

1. before anything is pushed, the key is opened (:func:`preflight`): a missing key, a
   wrong password or an unreachable KMS is one line and nothing is pushed;
2. the platform images, the manifest list and every *immutable* tag are pushed;
3. then everything is signed by digest (signatures name digests, never tags, so the
   immutable tags being there first changes nothing about what is signed);
4. only then do the *mutable* tags (``latest``, ``python-3.12``) move, and the publish
   record is written, saying who signed.

So a sign step that fails (the registry refuses the signature upload, say) leaves the new
immutable tags, which name exactly the content they will always name, and moves nothing:
hubs following ``latest`` never get an unsigned release, no record claims a signature,
and a rerun resumes (publish is idempotent) and signs. A release published before
without ``--sign`` is signed in place by ``publish --sign`` or ``release --sign``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

from builder.publish.cosign import Identity, Signer, keyless_identity, pem_fingerprint, verify

SBOM_PREDICATE = "cyclonedx"


@dataclasses.dataclass(frozen=True)
class Ready:
    """A signer whose key opened, and how the publish record names it."""

    signer: Signer
    by: str  # "key SHA256:…" or "keyless (IDENTITY)"
    public_pem: str = ""


def preflight(signer: Signer) -> Ready:
    if signer.key is None:
        return Ready(signer, signer.describe)
    pem = signer.public_key()
    return Ready(signer, f"key {pem_fingerprint(pem)}", pem)


def references(repository: str, digest: str, platforms: dict[str, str]) -> list[str]:
    """The manifest list first, then each platform's manifest, as ``HOST/REPO@sha256:…``."""
    return [f"{repository}@{digest}", *(f"{repository}@{d}" for _, d in sorted(platforms.items()))]


def sign_release(
    ready: Ready,
    repository: str,
    digest: str,
    platforms: dict[str, str],
    sbom: bytes,
    echo: Callable[[str], None] = lambda _: None,
) -> dict:
    """Sign every manifest of the release and attest its SBOM; the record's ``signed``."""
    refs = references(repository, digest, platforms)
    ready.signer.sign(refs)
    ready.signer.attest(refs[0], sbom, SBOM_PREDICATE)
    echo(f"signed {refs[0]} and {len(refs) - 1} platform manifest(s) ({ready.by}); SBOM attested")
    return _record(ready, digest, platforms)


def _record(ready: Ready, digest: str, platforms: dict[str, str]) -> dict:
    return {
        "by": ready.by,
        "digests": [digest, *(d for _, d in sorted(platforms.items()))],
        "attestations": [SBOM_PREDICATE],
    }


def ensure_signed(project, published, ready: Ready, echo: Callable[[str], None] = lambda _: None):
    """An unchanged release, signed by ``ready`` (signing it now if it is not yet)."""
    from builder import lock as locking
    from builder.publish.sbom import sbom_json

    wanted = _record(ready, published.digest, published.platforms)
    if published.signed == wanted:
        return published
    if _signed_already(ready, published):
        echo(f"{published.repository}@{published.digest}: signed already ({ready.by})")
    else:
        sbom = sbom_json(locking.read_lock(project, published.distribution)).encode()
        sign_release(ready, published.repository, published.digest, published.platforms, sbom, echo)
    done = published.model_copy(update={"signed": wanted, "unchanged": False})
    done.save(project)
    return done.model_copy(update={"unchanged": True})


def _signed_already(ready: Ready, published) -> bool:
    """Every manifest verifies for this signer, and the SBOM attestation too (keyless: the
    identity this CI run signs as). cosign would not duplicate a key's signature anyway,
    but a keyless run would add one (and a Rekor entry) each time."""
    refs = references(published.repository, published.digest, published.platforms)
    with tempfile.TemporaryDirectory(prefix="scistacks-pub-") as tmp:
        if ready.public_pem:
            key = Path(tmp) / "cosign.pub"
            key.write_text(ready.public_pem)
            identity = Identity(key=str(key))
        else:
            who = keyless_identity()
            if who is None:
                return False
            identity = Identity(certificate_identity=who[0], oidc_issuer=who[1])
        if not all(verify(ref, identity).verified for ref in refs):
            return False
        return verify(refs[0], identity, attestation=SBOM_PREDICATE).verified
