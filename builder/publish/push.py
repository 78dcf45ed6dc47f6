"""Stage 6: publish. Reads the lock, ``build/images/NAME.json`` and
``build/smoke/NAME/results.json``; pushes one multi-arch image to ``REGISTRY/NAMESPACE/NAME``
and writes ``build/publish/NAME.json``.

Order matters, so a failure never leaves a tag pointing at something half-published:

1. refuse a stale lock, a missing or changed image, an image smoke did not pass;
2. skip when the content tag is there with this lock's hash (and ``latest`` points at it);
3. push each platform's image under ``<content tag>-<arch>`` (immutable, like the content tag);
4. create the manifest list under the content tag, copy it to the other immutable tags
   (refusing one that already names different content), then move the mutable tags;
5. attach packages.md, a CycloneDX SBOM and the smoke summary to the manifest list.

With ``--sign`` the key is opened before step 3 and the release signed between the
immutable and the mutable tags of step 4 (see builder/publish/signing.py for why).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from builder import docker, git
from builder.errors import PublishError
from builder.image import labels as oci_labels
from builder.lock.model import LockedDistribution
from builder.project import Project, oci_platform
from builder.publish.record import Published, previous_record, require_smoke_passed
from builder.publish.sbom import sbom_json
from builder.publish.tags import CALVER_RE, TagContext, calver_key, content_tag, tags_for
from builder.records import ImageRecord, PlatformImage
from builder.registry import Reference, Registry

if TYPE_CHECKING:
    from builder.spec import Catalog

DEFAULT_REGISTRY = "localhost:5000/scistacks"

PACKAGES_TYPE = "application/vnd.scistacks.packages+markdown"
SBOM_TYPE = "application/vnd.cyclonedx+json"
SMOKE_TYPE = "application/vnd.scistacks.smoke+markdown"


# -- 1. what may be published ----------------------------------------------------------------


def verified_images(
    project: Project, catalog: Catalog, name: str
) -> tuple[LockedDistribution, dict[str, PlatformImage]]:
    """The lock and the record's per-platform images, once every check passes."""
    from builder import lock as locking

    stale = locking.check(project, catalog, [name])
    if stale:
        raise PublishError(f"lock is out of date, not publishing: {stale[0].reason}")
    locked = locking.read_lock(project, name)
    dist = catalog.get(name)
    platforms = [p for p in dist.platforms if p.startswith("linux-")]
    record = ImageRecord.load(project, name)
    record_file = project.relative(project.image_record(name))
    if record.lock_hash != locked.lock_hash():
        raise PublishError(
            f"images were built from another lock (run: scistacks build {name})", file=record_file
        )
    images = record.platforms
    for plat in platforms:
        entry = images.get(plat)
        if entry is None:
            raise PublishError(
                f"no {oci_platform(plat)} image built (run: scistacks build {name} "
                f"--platform {oci_platform(plat)})",
                file=record_file,
            )
        current = docker.image_id(entry.ref, error=PublishError)
        if current != entry.image_id:
            now = f"is now {current[:19]}" if current else "is gone"
            raise PublishError(
                f"{entry.ref} {now}, not the recorded {entry.image_id[:19]} "
                f"(run: scistacks build {name})",
                file=record_file,
            )
    require_smoke_passed(project, name, locked, {p: images[p] for p in platforms})
    return locked, {p: images[p] for p in platforms}


# -- artifacts -------------------------------------------------------------------------------


def _artifacts(project: Project, name: str, locked) -> list[tuple[str, str, bytes, str]]:
    """(artifactType, file name, bytes, media type) of what is attached to the image."""
    packages = project.lock_dir(name) / "packages.md"
    summary = project.results_dir(name) / "summary.md"
    out = [(SBOM_TYPE, f"{name}.cdx.json", sbom_json(locked).encode(), SBOM_TYPE)]
    if packages.is_file():
        out.append((PACKAGES_TYPE, "packages.md", packages.read_bytes(), "text/markdown"))
    if summary.is_file():
        out.append((SMOKE_TYPE, "smoke-summary.md", summary.read_bytes(), "text/markdown"))
    return out


# -- 2.-5. the registry side -----------------------------------------------------------------


def target(registry: str, name: str) -> tuple[Registry, Reference]:
    ref = Reference.parse(f"{registry.rstrip('/')}/{name}")
    return Registry(ref.host, timeout=10.0), ref


def publish(
    project: Project,
    catalog: Catalog,
    name: str,
    registry: str = DEFAULT_REGISTRY,
    *,
    git_sha: str | None = None,
    signer=None,
    echo: Callable[[str], None] = lambda _: None,
) -> Published:
    """Publish NAME's smoke-tested images as one multi-arch image; return what was done.
    ``signer`` (a cosign.Signer, or a signing.Ready already opened): sign it too."""
    from builder import lock as locking
    from builder.publish import signing

    stale = locking.check(project, catalog, [name])  # before "unchanged": specs moved on
    if stale:
        raise PublishError(f"lock is out of date, not publishing: {stale[0].reason}")
    ready = signing.preflight(signer) if isinstance(signer, signing.Signer) else signer
    done = already_published(project, name, registry)
    if done is not None:
        echo(f"unchanged: {done.repository}:{done.immutable[0]} ({done.digest})")
        return signing.ensure_signed(project, done, ready, echo) if ready else done
    locked, images = verified_images(project, catalog, name)
    client, ref = target(registry, name)
    repo = ref.repository
    client.ping()
    existing = set(client.tags(repo))
    content = content_tag(locked)
    full_hash = locked.lock_hash()

    index = None
    if content in existing:
        labels = client.config_labels(repo, content) or {}
        if labels.get(oci_labels.LOCK_HASH) != full_hash:
            raise PublishError(f"{ref.with_tag(content)} exists with other content, not replacing")
        index = client.manifest(repo, content)
        # (pushed before, but the mutable tags never moved, or were moved elsewhere since,
        # as by a release of a newer lock that is now reverted: every step below is idempotent)

    tagset = tags_for(
        TagContext(
            name,
            locked,
            git_sha=git_sha if git_sha is not None else git.head(project.root),
            existing_tags=frozenset(existing),
        )
    )
    arch_tags = {p: f"{content}-{oci_platform(p).split('/')[1]}" for p in images}
    # every immutable tag is checked before anything is pushed
    for plat, tag in arch_tags.items():
        # left by an interrupted publish of this very lock: reused; anything else: refused
        if (
            tag in existing
            and (client.config_labels(repo, tag) or {}).get(oci_labels.PLATFORM_LOCK_HASH)
            != images[plat].lock_hash
        ):
            raise PublishError(f"{ref.with_tag(tag)} exists with other content, not replacing")
    if index is None:
        for tag in tagset.immutable:
            if tag in existing:
                raise PublishError(f"{ref.with_tag(tag)} already exists, not replacing (immutable)")
    else:
        _check_immutable(client, repo, ref, tagset.immutable, existing, index[2])

    platforms: dict[str, str] = {}
    if index is None:
        for plat, entry in images.items():
            dest = str(ref.with_tag(arch_tags[plat]))
            started = time.monotonic()
            docker.run(["tag", entry.ref, dest], what=f"cannot tag {entry.ref}", error=PublishError)
            docker.run(["push", "--quiet", dest], what=f"cannot push {dest}", error=PublishError)
            echo(f"pushed {dest} in {time.monotonic() - started:.0f}s")
        docker.run(
            ["buildx", "imagetools", "create", "-t", str(ref.with_tag(content))]
            + [str(ref.with_tag(t)) for t in arch_tags.values()],
            what="cannot create the manifest list",
            error=PublishError,
        )
        index = client.manifest(repo, content)
        if index is None:
            raise PublishError(f"{ref.with_tag(content)} is missing after it was created")
    raw, media, digest = index
    for entry in json.loads(raw).get("manifests", []):
        plat = entry.get("platform", {})
        if plat.get("os") != "unknown":
            platforms[f"{plat.get('os')}/{plat.get('architecture')}"] = entry["digest"]

    immutable = []
    for tag in tagset.immutable:
        kept = _dated_already(client, repo, tag, digest, existing)
        if tag != content and tag not in existing and not kept:
            client.put_manifest(repo, tag, raw, media)
        immutable.append(kept or tag)
    signed = {}
    if ready:  # before the mutable tags: they never name an unsigned release
        sbom = sbom_json(locked).encode()
        signed = signing.sign_release(ready, f"{ref.host}/{repo}", digest, platforms, sbom, echo)
    for tag in tagset.mutable:  # only now: everything they will point at is there
        client.put_manifest(repo, tag, raw, media)
    echo(f"{ref.with_tag(content)}: {digest}")

    artifacts: dict[str, str] = {}
    have = {e.get("artifactType"): e["digest"] for e in client.referrers(repo, digest)}
    for artifact_type, file_name, data, file_media in _artifacts(project, name, locked):
        artifacts[artifact_type] = have.get(artifact_type) or client.attach(
            repo,
            digest,
            media,
            len(raw),
            artifact_type,
            {file_name: (data, file_media)},
            {"org.opencontainers.image.title": file_name, oci_labels.LOCK_HASH: full_hash},
        )

    result = Published(
        distribution=name,
        repository=f"{ref.host}/{repo}",
        digest=digest,
        lock_hash=full_hash,
        immutable=immutable,
        mutable=list(tagset.mutable),
        platforms=dict(sorted(platforms.items())),
        artifacts=artifacts,
        signed=signed,
    )
    result.save(project)
    return result


def already_published(project: Project, name: str, registry: str) -> Published | None:
    """This lock's release, when the registry holds it complete: the content tag carrying
    this lock's hash, and ``latest`` naming it. Reads no local image, so a machine that
    never built it (a fresh CI runner) skips build, smoke and push alike."""
    from builder import lock as locking

    locked = locking.read_lock(project, name)
    client, ref = target(registry, name)
    repo = ref.repository
    existing = set(client.tags(repo))
    content = content_tag(locked)
    if content not in existing or "latest" not in existing:
        return None
    labels = client.config_labels(repo, content) or {}
    if labels.get(oci_labels.LOCK_HASH) != locked.lock_hash():
        return None  # publish refuses it, loudly, once the images are verified
    index, latest = client.manifest(repo, content), client.manifest(repo, "latest")
    if index is None or latest is None or index[2] != latest[2]:
        return None
    digest = index[2]
    previous = previous_record(project, name)
    if previous and previous.digest == digest and previous.repository == f"{ref.host}/{repo}":
        return previous.model_copy(update={"unchanged": True})
    # no record of it here: rebuild one from the registry (the newest dates, the artifacts)
    platforms = {
        f"{e['platform']['os']}/{e['platform']['architecture']}": e["digest"]
        for e in json.loads(index[0]).get("manifests", [])
        if e.get("platform", {}).get("os") not in (None, "unknown")
    }
    dates = sorted((t for t in existing if CALVER_RE.match(t)), key=calver_key, reverse=True)[:10]
    immutable = [content] + [t for t in dates if client.manifest(repo, t)[2] == digest]
    artifacts = {e.get("artifactType"): e["digest"] for e in client.referrers(repo, digest)}
    found = Published(
        distribution=name,
        repository=f"{ref.host}/{repo}",
        digest=digest,
        lock_hash=locked.lock_hash(),
        immutable=immutable,
        mutable=["latest"],
        platforms=dict(sorted(platforms.items())),
        artifacts=dict(sorted(artifacts.items())),
        signed={},
    )
    found.save(project)
    return found.model_copy(update={"unchanged": True})


def _check_immutable(client, repo, ref, tags, existing, digest) -> None:
    for tag in tags:
        if tag in existing:
            found = client.manifest(repo, tag)
            if found and found[2] != digest:
                raise PublishError(
                    f"{ref.with_tag(tag)} already names {found[2][:19]}, not replacing (immutable)"
                )


def _dated_already(client, repo, tag, digest, existing) -> str | None:
    """A resumed publish keeps today's CalVer tag rather than adding ``-2``."""
    day = re.fullmatch(r"(\d{4}\.\d{2}\.\d{2})(-\d+)?", tag)
    if not day:
        return None
    for other in sorted(existing):
        if re.fullmatch(re.escape(day.group(1)) + r"(-\d+)?", other):
            found = client.manifest(repo, other)
            if found and found[2] == digest:
                return other
    return None
