"""cosign, as scistacks signs and verifies with it: the one process boundary.

Every cosign call goes through :func:`_run`, which owns the argv, the environment, the
timeout and cosign's stderr: a failure becomes one ``PublishError`` line saying what went
wrong (wrong password, no such key, no signature, signed by another key...), never
cosign's multi-line output.

- Secrets never reach argv: the key's password is ``COSIGN_PASSWORD`` in the environment
  (cosign reads it there), and registry credentials given as
  ``$SCISTACKS_REGISTRY_USER``/``_PASSWORD`` go into a private ``DOCKER_CONFIG`` that
  exists for the call only. Otherwise cosign reads the docker config as docker does.
- Key-based signatures are not uploaded to Rekor (``--tlog-upload=false``), so they are
  verified with ``--insecure-ignore-tlog=true``: the key is the trust. Keyless
  signatures (GitHub OIDC, Fulcio certificates) do go to Rekor, as cosign requires.
- Loopback registries speak plain http (as ``builder.registry`` assumes), so calls to
  them add ``--allow-http-registry``; nothing else does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.errors import PublishError

TIMEOUT = 300  # seconds per cosign call; cosign's own timeout is 3 minutes
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def require() -> str:
    found = shutil.which("cosign")
    if not found:
        raise PublishError("cosign not found on PATH (scripts/setup-host.sh installs it)")
    return found


def _is_uri(key: str) -> bool:
    return "://" in key  # k8s://, awskms://, gcpkms://, hashivault://, env://, ...


@dataclass(frozen=True)
class Signer:
    """A private key (file or KMS/k8s URI), or keyless (an OIDC identity from the CI)."""

    key: str | None = None  # None: keyless

    @classmethod
    def resolve(cls, key: str | None, keyless: bool) -> Signer:
        """``--key``, else ``$COSIGN_KEY``; ``--keyless`` excludes both."""
        if keyless:
            if key:
                raise PublishError("--keyless signs without a key: drop --key", field="--key")
            return cls(None)
        key = key or os.environ.get("COSIGN_KEY") or None
        if not key:
            raise PublishError(
                "signing needs a key: --key FILE|URI or $COSIGN_KEY "
                "(or --keyless, in CI with an OIDC token)",
                field="--sign",
            )
        if not _is_uri(key) and not Path(key).is_file():
            raise PublishError(f"no such key file: {key}", field="--key")
        return cls(key)

    @property
    def describe(self) -> str:
        if self.key is None:
            who = keyless_identity()
            return f"keyless ({who[0]})" if who else "keyless"
        return f"key {self.key}"

    def _flags(self) -> list[str]:
        if self.key is None:
            return []
        return ["--key", self.key, "--tlog-upload=false"]

    def public_key(self) -> str:
        """The key pair's public half (PEM): proves the key opens (right password, KMS
        reachable) before anything is pushed. Keyless: nothing to check offline."""
        if self.key is None:
            return ""
        proc = _run(["public-key", "--key", self.key], what=f"key {self.key}")
        return proc.stdout

    def sign(self, references: Sequence[str]) -> None:
        """Sign each ``REPO@sha256:…`` (by digest only: a tag could move meanwhile)."""
        _require_digests(references)
        _run(
            ["sign", "--yes", *self._flags(), *_http(references), *references],
            what=f"signing {references[0]}",
        )

    def attest(self, reference: str, predicate: bytes, predicate_type: str) -> None:
        _require_digests([reference])
        with tempfile.TemporaryDirectory(prefix="scistacks-attest-") as tmp:
            path = Path(tmp) / "predicate.json"
            path.write_bytes(predicate)
            _run(
                [
                    "attest",
                    "--yes",
                    *self._flags(),
                    "--type",
                    predicate_type,
                    "--predicate",
                    str(path),
                    *_http([reference]),
                    reference,
                ],
                what=f"attesting {reference}",
            )


def keyless_identity() -> tuple[str, str] | None:
    """(certificate identity, issuer) a keyless signature made here will carry: on GitHub
    Actions, the workflow file at its ref."""
    ref = os.environ.get("GITHUB_WORKFLOW_REF")
    if os.environ.get("GITHUB_ACTIONS") == "true" and ref:
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{ref}", GITHUB_ISSUER
    return None


@dataclass(frozen=True)
class Identity:
    """Whose signature counts: a public key (file or URI), or a certificate identity."""

    key: str | None = None
    certificate_identity: str | None = None
    oidc_issuer: str | None = None

    @classmethod
    def resolve(cls, key: str | None, identity: str | None, issuer: str | None) -> Identity:
        if key and (identity or issuer):
            raise PublishError("--key and --certificate-identity exclude each other", field="--key")
        if key:
            if not _is_uri(key) and not Path(key).is_file():
                raise PublishError(f"no such key file: {key}", field="--key")
            return cls(key=key)
        if identity and issuer:
            return cls(certificate_identity=identity, oidc_issuer=issuer)
        if identity or issuer:
            raise PublishError(
                "keyless verification needs both --certificate-identity and "
                "--certificate-oidc-issuer",
                field="--certificate-identity",
            )
        raise PublishError(
            "whose signature? --key PUBLIC_KEY, or --certificate-identity and "
            "--certificate-oidc-issuer",
            field="--key",
        )

    @property
    def describe(self) -> str:
        if self.key:
            return f"key {self.key}{_fingerprint(self.key)}"
        return f"{self.certificate_identity} (issuer {self.oidc_issuer})"

    def _flags(self) -> list[str]:
        if self.key:
            return ["--key", self.key, "--insecure-ignore-tlog=true"]
        return [
            "--certificate-identity",
            self.certificate_identity,
            "--certificate-oidc-issuer",
            self.oidc_issuer,
        ]


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str  # verified: who signed; else: why not, in a few words
    signer: str = ""


def verify(reference: str, identity: Identity, *, attestation: str | None = None) -> Verdict:
    """Is ``REPO@sha256:…`` signed by ``identity``? ``attestation``: check a signed
    attestation of that predicate type instead of the image signature."""
    _require_digests([reference])
    command = ["verify-attestation", "--type", attestation] if attestation else ["verify"]
    try:
        proc = _run(
            [*command, *identity._flags(), *_http([reference]), reference],
            what=f"verifying {reference}",
            raw=True,
        )
    except _Failed as exc:
        return Verdict(False, _why_not(exc.line, identity))
    return Verdict(True, identity.describe, _signed_by(proc.stdout) or identity.describe)


# -- the process boundary --------------------------------------------------------------------


class _Failed(Exception):
    def __init__(self, line: str):
        self.line = line


def _require_digests(references: Sequence[str]) -> None:
    for ref in references:
        if "@sha256:" not in ref:
            raise PublishError(f"cosign signs and verifies by digest, not {ref!r}")


def _host(reference: str) -> str:
    return reference.split("/", 1)[0]


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0]


def _http(references: Sequence[str]) -> list[str]:
    loopback = any(_hostname(_host(r)) in LOOPBACK for r in references)
    return ["--allow-http-registry"] if loopback else []


@contextlib.contextmanager
def _environment(hosts: set[str]) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    user = os.environ.get("SCISTACKS_REGISTRY_USER")
    password = os.environ.get("SCISTACKS_REGISTRY_PASSWORD")
    if not (user and password and hosts):
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="scistacks-cosign-") as tmp:
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        config = Path(tmp) / "config.json"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"auths": {h: {"auth": auth} for h in sorted(hosts)}}, fh)
        env["DOCKER_CONFIG"] = tmp
        yield env


def _run(args: list[str], *, what: str, raw: bool = False) -> subprocess.CompletedProcess:
    """``cosign ARGS``. On failure: ``_Failed(line)`` when ``raw``, else one PublishError."""
    binary = require()
    hosts = {_host(a) for a in args if "@sha256:" in a}
    with _environment(hosts) as env:
        try:
            proc = subprocess.run(
                [binary, *args],
                stdin=subprocess.DEVNULL,  # never a password prompt
                capture_output=True,
                text=True,
                env=env,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            line = f"cosign gave no answer within {TIMEOUT}s"
            if raw:
                raise _Failed(line) from None
            raise PublishError(f"{what}: {line}") from None
    if proc.returncode == 0:
        return proc
    line = _error_line(proc.stderr) or f"cosign exited {proc.returncode}"
    if raw:
        raise _Failed(line)
    raise PublishError(f"{what}: {_explain(line)}")


def _error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    errors = [ln[len("Error: ") :] for ln in lines if ln.startswith("Error: ")]
    if errors:
        return errors[0]
    rest = [ln for ln in lines if not ln.startswith("WARNING")]
    return rest[-1] if rest else ""


def _explain(line: str) -> str:
    """cosign's nested error chain, said plainly where the cause is a known one."""
    known = [
        ("decryption failed", "wrong password for the key ($COSIGN_PASSWORD)"),
        ("inappropriate ioctl", "the key is encrypted and $COSIGN_PASSWORD is not set"),
        ("unsupported pem type: PUBLIC KEY", "that is a public key; signing needs cosign.key"),
        ("no such file or directory", "no such key file"),
        ("DENIED", "the registry refused the upload"),
        ("UNAUTHORIZED", "the registry refused the upload (credentials?)"),
        ("UNSUPPORTED", "the registry refused the upload"),
        ("status code 40", "the registry refused the upload"),
        ("connection refused", "the registry does not answer"),
    ]
    for needle, plain in known:
        if needle in line:
            return f"{plain} ({_tail(line)})"
    return _tail(line)


def _tail(line: str, keep: int = 3) -> str:
    """The last few links of ``a: b: c: d``, without references repeated in brackets."""
    parts = [p for p in line.split(": ") if not (p.startswith("signing [") and p.endswith("]"))]
    return ": ".join(parts[-keep:])[:300]


def _why_not(line: str, identity: Identity) -> str:
    if "no signatures found" in line or "no matching attestations" in line:
        return "not signed"
    if "invalid or missing digest in claim" in line:
        return "its signature was made for another digest"
    if "MANIFEST_UNKNOWN" in line or "image tag not found" in line:
        return "no such image in the registry"
    if "none of the expected identities matched" in line:
        return f"signed by someone else, not {identity.describe} ({_tail(line, 1)})"
    if "no matching signatures" in line:
        return f"signed, but not by {identity.describe}"
    if "TUF" in line or "tuf" in line:
        return f"cannot reach sigstore's trust root for keyless verification ({_tail(line, 1)})"
    return f"cannot verify: {_explain(line)}"


def _signed_by(stdout: str) -> str | None:
    """The certificate subject and issuer of a keyless signature (cosign's JSON output)."""
    try:
        entries = json.loads(stdout.strip().splitlines()[0]) if stdout.strip() else []
    except (ValueError, IndexError):
        return None
    for entry in entries if isinstance(entries, list) else []:
        optional = entry.get("optional") or {} if isinstance(entry, dict) else {}
        if optional.get("Subject"):
            return f"{optional['Subject']} (issuer {optional.get('Issuer', '?')})"
    return None


def _fingerprint(key: str) -> str:
    """`` (SHA256:…)`` of a PEM public key file, as ``ssh-keygen -l`` would name it."""
    if _is_uri(key):
        return ""
    try:
        text = Path(key).read_text()
    except (OSError, UnicodeDecodeError):
        return ""
    body = "".join(ln for ln in text.splitlines() if ln and not ln.startswith("-----"))
    try:
        der = base64.b64decode(body, validate=True)
    except ValueError:
        return ""
    return f" (SHA256:{hashlib.sha256(der).hexdigest()[:16]})"


def pem_fingerprint(pem: str) -> str:
    body = "".join(ln for ln in pem.splitlines() if ln and not ln.startswith("-----"))
    try:
        return "SHA256:" + hashlib.sha256(base64.b64decode(body)).hexdigest()[:16]
    except ValueError:
        return ""
