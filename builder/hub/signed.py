"""``hub check --verify``: every reference to our images must be signed by the trusted
key or identity. A tag is checked for the digest it names now (a re-tagged, unsigned
image under a signed tag is flagged); the manifest list's signature covers its platform
manifests, which it names by digest."""

from __future__ import annotations

from builder.publish.cosign import Identity, verify


def findings(repo, ref, identity: Identity) -> list:
    """Findings about ``ref``'s signature: a problem unless signed by ``identity``, else a
    note naming the signer. Nothing for a reference that names no image (reported as such
    already)."""
    from builder.hub.checking import Finding

    if ref.digest:
        digest = ref.digest if repo.manifest(ref.digest) else None
    elif ref.tag is None:
        digest = repo.digest("latest")
    else:
        digest = repo.digest(ref.tag) if ref.tag in repo.tags else None
    if digest is None:
        return []
    verdict = verify(f"{repo.client.host}/{repo.repository}@{digest}", identity)
    if verdict.verified:
        return [Finding(ref, f"{ref} ({digest[:19]}) signed by {verdict.signer}", problem=False)]
    return [Finding(ref, f"{ref} ({digest[:19]}) is {_said(verdict.reason)}")]


def _said(reason: str) -> str:
    return reason if reason.startswith(("not ", "signed")) else f"not verified: {reason}"
