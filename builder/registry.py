"""A small client for the OCI distribution API (registries: ghcr.io, quay.io, Debian's
docker-registry on localhost, ...).

Docker moves images; this client reads what is published (tags, manifests, labels),
attaches artifacts to images (the referrers API, with the tag-schema fallback for
registries without it) and records advisories. Credentials come from the docker config
or the environment and never appear in messages.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import PublishError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])
EMPTY_CONFIG = b"{}"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Reference:
    """``host[:port]/namespace/name`` (+ tag or digest), as docker spells it."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        rest, _, digest = text.partition("@")
        digest = digest or None
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
        if "/" not in rest:
            raise PublishError(
                f"expected REGISTRY/NAMESPACE/NAME, got {text!r}", field="--registry"
            )
        host, repository = rest.split("/", 1)
        if "." not in host and ":" not in host and host != "localhost":
            raise PublishError(
                f"{text!r} does not start with a registry host (e.g. ghcr.io/org)",
                field="--registry",
            )
        return cls(host, repository, tag, digest)

    def __str__(self) -> str:
        out = f"{self.host}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.host, self.repository, tag, None)


def _credentials(host: str) -> tuple[str, str] | None:
    """$SCISTACKS_REGISTRY_USER/_PASSWORD, else the docker config: ``credHelpers`` for the
    host, ``auths`` entries, then ``credsStore`` (what `docker login` writes on desktops)."""
    user = os.environ.get("SCISTACKS_REGISTRY_USER")
    password = os.environ.get("SCISTACKS_REGISTRY_PASSWORD")
    if user and password:
        return user, password
    config = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    keys = (host, f"https://{host}", f"http://{host}")
    helper = (data.get("credHelpers") or {}).get(host)
    if helper:
        return _from_helper(helper, keys)
    auths = data.get("auths") or {}
    for key in keys:
        entry = auths.get(key)
        if entry and entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return user, password
    if data.get("credsStore"):
        return _from_helper(data["credsStore"], keys)
    return None


def _from_helper(helper: str, keys: tuple[str, ...]) -> tuple[str, str] | None:
    """Ask ``docker-credential-HELPER get`` (the docker credential helper protocol)."""
    for key in keys:
        try:
            proc = subprocess.run(
                [f"docker-credential-{helper}", "get"],
                input=key,
                capture_output=True,  # its output holds the secret: never shown
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode == 0:
            try:
                found = json.loads(proc.stdout)
                return found["Username"], found["Secret"]
            except (ValueError, KeyError, TypeError):
                return None
    return None


@dataclass
class Registry:
    host: str
    timeout: float = 30.0
    _token: dict[str, str] = field(default_factory=dict, repr=False)
    _referrers_api: bool | None = field(default=None, repr=False)  # None: not asked yet

    @property
    def base(self) -> str:
        local = self.host.split(":")[0] in ("localhost", "127.0.0.1", "[::1]")
        return f"{'http' if local else 'https'}://{self.host}"

    # -- transport -------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: dict | None = None,
        repository: str = "",
        ok=(200, 201, 202, 204),
    ) -> tuple[int, dict, bytes]:
        url = path if path.startswith("http") else self.base + path
        headers = dict(headers or {})
        for attempt in range(2):
            auth = self._token.get(repository)
            if auth:
                headers["Authorization"] = auth
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return resp.status, dict(resp.headers), resp.read()
            except urllib.error.HTTPError as exc:
                body = exc.read()
                if (
                    exc.code == 401
                    and attempt == 0
                    and self._authenticate(exc.headers.get("WWW-Authenticate", ""), repository)
                ):
                    continue
                if exc.code in ok:
                    return exc.code, dict(exc.headers), body
                return exc.code, dict(exc.headers), body
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise PublishError(f"registry unreachable: {reason}", field=self.host) from None
        raise PublishError("authentication failed", field=self.host)

    def _authenticate(self, challenge: str, repository: str) -> bool:
        creds = _credentials(self.host)
        if challenge.lower().startswith("basic"):
            if not creds:
                return False
            self._token[repository] = (
                "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            )
            return True
        if not challenge.lower().startswith("bearer"):
            return False
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", None)
        if not realm:
            return False
        if repository and "scope" not in params:
            params["scope"] = f"repository:{repository}:pull,push"
        req = urllib.request.Request(realm + "?" + urllib.parse.urlencode(params))
        if creds:
            req.add_header(
                "Authorization",
                "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode(),
            )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return False
        token = payload.get("token") or payload.get("access_token")
        if not token:
            return False
        self._token[repository] = f"Bearer {token}"
        return True

    def _fail(self, status: int, body: bytes, what: str) -> PublishError:
        try:
            errors = json.loads(body).get("errors", [])
            detail = (
                "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
                or f"HTTP {status}"
            )
        except ValueError:
            detail = f"HTTP {status}"
        return PublishError(f"{what}: {detail}", field=self.host)

    # -- API ---------------------------------------------------------------------------
    def ping(self) -> None:
        status, _, body = self._request("GET", "/v2/")
        if status not in (200, 401):
            raise self._fail(status, body, "not an OCI registry")

    def tags(self, repository: str) -> list[str]:
        status, _, body = self._request(
            "GET", f"/v2/{repository}/tags/list?n=10000", repository=repository
        )
        if status == 404:
            return []
        if status != 200:
            raise self._fail(status, body, f"cannot list tags of {repository}")
        return sorted(json.loads(body).get("tags") or [])

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str, str] | None:
        """(raw manifest, media type, digest) or None when absent."""
        status, headers, body = self._request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            headers={"Accept": ACCEPT},
            repository=repository,
        )
        if status == 404:
            return None
        if status != 200:
            raise self._fail(status, body, f"cannot read {repository}:{reference}")
        media = headers.get("Content-Type", "").split(";")[0]
        return body, media, headers.get("Docker-Content-Digest") or digest_of(body)

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        status, headers, body = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            data=raw,
            headers={"Content-Type": media_type},
            repository=repository,
        )
        if status not in (200, 201):
            raise self._fail(status, body, f"cannot push manifest {repository}:{reference}")
        return headers.get("Docker-Content-Digest") or digest_of(raw)

    def blob(self, repository: str, digest: str) -> bytes:
        status, _, body = self._request(
            "GET", f"/v2/{repository}/blobs/{digest}", repository=repository
        )
        if status != 200:
            raise self._fail(status, body, f"cannot read blob {digest[:19]} of {repository}")
        return body

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        status, _, _ = self._request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", repository=repository, ok=(200, 404)
        )
        if status == 200:
            return digest
        status, headers, body = self._request(
            "POST", f"/v2/{repository}/blobs/uploads/", repository=repository
        )
        if status != 202:
            raise self._fail(status, body, f"cannot start upload to {repository}")
        location = headers.get("Location", "")
        if location.startswith("/"):
            location = self.base + location
        sep = "&" if "?" in location else "?"
        status, _, body = self._request(
            "PUT",
            f"{location}{sep}digest={urllib.parse.quote(digest)}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            repository=repository,
        )
        if status != 201:
            raise self._fail(status, body, f"cannot upload blob to {repository}")
        return digest

    def config_labels(
        self, repository: str, reference: str, platform: str | None = None
    ) -> dict[str, str] | None:
        """The image config labels of a tag (first or given platform of an index)."""
        found = self.manifest(repository, reference)
        if found is None:
            return None
        raw, media, _ = found
        doc = json.loads(raw)
        if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
            entries = [
                m for m in doc.get("manifests", []) if m.get("platform", {}).get("os") != "unknown"
            ]
            if platform:
                arch = platform.split("/", 1)[-1]
                entries = [
                    m for m in entries if m.get("platform", {}).get("architecture") == arch
                ] or entries
            if not entries:
                return {}
            found = self.manifest(repository, entries[0]["digest"])
            if found is None:
                return {}
            doc = json.loads(found[0])
        config = doc.get("config", {})
        if config.get("mediaType") in (OCI_EMPTY,) or not config.get("digest"):
            return {}
        blob = json.loads(self.blob(repository, config["digest"]))
        return (blob.get("config") or {}).get("Labels") or {}

    # -- artifacts (OCI 1.1 referrers, with the tag-schema fallback) -------------------
    def attach(
        self,
        repository: str,
        subject_digest: str,
        subject_media: str,
        subject_size: int,
        artifact_type: str,
        files: dict[str, tuple[bytes, str]],
        annotations: dict[str, str],
    ) -> str:
        """Push an artifact manifest whose ``subject`` is the image; returns its digest."""
        config_digest = self.push_blob(repository, EMPTY_CONFIG)
        layers = []
        for name, (data, media) in sorted(files.items()):
            layers.append(
                {
                    "mediaType": media,
                    "digest": self.push_blob(repository, data),
                    "size": len(data),
                    "annotations": {"org.opencontainers.image.title": name},
                }
            )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": config_digest, "size": len(EMPTY_CONFIG)},
            "layers": layers,
            "subject": {"mediaType": subject_media, "digest": subject_digest, "size": subject_size},
            "annotations": dict(sorted(annotations.items())),
        }
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        digest = self.put_manifest(repository, digest_of(raw), raw, OCI_MANIFEST)
        if not self._supports_referrers(repository, subject_digest):
            self._add_to_fallback_index(
                repository, subject_digest, digest, len(raw), artifact_type, manifest["annotations"]
            )
        return digest

    def _supports_referrers(self, repository: str, digest: str) -> bool:
        if self._referrers_api is None:
            self._referrers_get(repository, digest)
        return bool(self._referrers_api)

    def _referrers_get(self, repository: str, digest: str) -> tuple[int, bytes]:
        """GET the referrers API; 404 means a registry without it (learnt once)."""
        status, _, body = self._request(
            "GET",
            f"/v2/{repository}/referrers/{digest}",
            headers={"Accept": OCI_INDEX},
            repository=repository,
            ok=(200, 404),
        )
        self._referrers_api = status == 200
        return status, body

    def _fallback_tag(self, digest: str) -> str:
        return digest.replace(":", "-")

    def _add_to_fallback_index(
        self, repository, subject_digest, digest, size, artifact_type, annotations
    ) -> None:
        tag = self._fallback_tag(subject_digest)
        current = self.manifest(repository, tag)
        index = (
            json.loads(current[0])
            if current
            else {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        )
        if any(m["digest"] == digest for m in index["manifests"]):
            return
        index["manifests"].append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": size,
                "artifactType": artifact_type,
                "annotations": annotations,
            }
        )
        raw = json.dumps(index, separators=(",", ":")).encode()
        self.put_manifest(repository, tag, raw, OCI_INDEX)

    def referrers(
        self, repository: str, subject_digest: str, artifact_type: str | None = None
    ) -> list[dict]:
        status, body = (
            self._referrers_get(repository, subject_digest)
            if self._referrers_api is not False
            else (404, b"")
        )
        if status == 200:
            entries = json.loads(body).get("manifests", [])
        else:
            found = self.manifest(repository, self._fallback_tag(subject_digest))
            entries = json.loads(found[0]).get("manifests", []) if found else []
        return [
            e for e in entries if artifact_type is None or e.get("artifactType") == artifact_type
        ]
