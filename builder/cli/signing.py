"""The command-line options of signing and verifying (``publish``/``release --sign``,
``verify``, ``hub check --verify``), shared by builder/cli/publish.py and hub.py; cosign
itself is only imported when an option asks for it."""

from __future__ import annotations

import click

from builder.errors import ScistacksError


def sign_options(command):
    """``--sign [--key K | --keyless]``: cosign signatures (builder/publish/signing.py)."""
    command = click.option(
        "--keyless",
        is_flag=True,
        help="With --sign: sign with the CI's OIDC identity (GitHub Actions), no key.",
    )(command)
    command = click.option(
        "--key",
        "sign_key",
        metavar="FILE|URI",
        help="With --sign: cosign private key or KMS/k8s:// URI (default: $COSIGN_KEY; "
        "password in $COSIGN_PASSWORD).",
    )(command)
    return click.option(
        "--sign",
        is_flag=True,
        help="Sign the manifest list and each platform manifest with cosign, attest the SBOM.",
    )(command)


def signer_from(sign: bool, key: str | None, keyless: bool):
    """A cosign.Signer for ``--sign``, else None."""
    if not sign:
        if key or keyless:
            raise ScistacksError("--key and --keyless only go with --sign", field="--sign")
        return None
    from builder.publish.cosign import Signer

    return Signer.resolve(key, keyless)


def identity_options(command):
    """Whose signature counts: ``--key`` or ``--certificate-identity`` + ``-oidc-issuer``."""
    command = click.option(
        "--certificate-oidc-issuer",
        "oidc_issuer",
        metavar="URL",
        help="Keyless: the OIDC issuer (GitHub: https://token.actions.githubusercontent.com).",
    )(command)
    command = click.option(
        "--certificate-identity",
        "cert_identity",
        metavar="ID",
        help="Keyless: the signer's identity, e.g. "
        "https://github.com/ORG/REPO/.github/workflows/publish.yml@refs/heads/main.",
    )(command)
    return click.option(
        "--key", "verify_key", metavar="FILE|URI", help="cosign public key (or KMS URI)."
    )(command)


def trusted(key, cert_identity, oidc_issuer, *, wanted: bool = True):
    """A cosign.Identity from the options; None when not ``wanted`` (no ``--verify``)."""
    if not wanted:
        if key or cert_identity or oidc_issuer:
            raise ScistacksError(
                "--key and --certificate-* only go with --verify", field="--verify"
            )
        return None
    from builder.publish.cosign import Identity

    return Identity.resolve(key, cert_identity, oidc_issuer)
