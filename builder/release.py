"""``scistacks release``: every stage in order, each skipped when its output is current.

lock --check → context + build (native) → smoke → publish → profile snippet attached.
The stages keep their own rules; this module only chains them and stops at the first
refusal, so a release never publishes what a stage would not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from builder import image, profiles
from builder import lock as locking
from builder.errors import PublishError
from builder.project import Project
from builder.publish import (
    DEFAULT_REGISTRY,
    Published,
    already_published,
    publish,
    smoke_is_current,
    target,
)
from builder.smoke import smoke

if TYPE_CHECKING:
    from builder.spec import Catalog


def release(
    project: Project,
    catalog: Catalog,
    name: str,
    registry: str = DEFAULT_REGISTRY,
    *,
    platforms=None,
    channel_map,
    signer=None,
    echo: Callable[[str], None] = lambda _: None,
) -> Published:
    from builder.publish import signing

    client, _ = target(registry, name)
    try:
        client.ping()  # before minutes of building, not after
    except PublishError as exc:
        raise PublishError(f"registry {client.host} does not answer ({exc})") from None
    stale = locking.check(project, catalog, [name])
    if stale:
        raise PublishError(f"lock is out of date, not releasing: {stale[0].reason}")
    ready = signing.preflight(signer) if signer else None  # a bad key: before building
    done = already_published(project, name, registry)
    if done is not None:
        echo(f"unchanged: {done.repository}:{done.immutable[0]} is this lock, published")
        echo(f"{name}: nothing built, smoke-tested or pushed")
        if ready:
            done = signing.ensure_signed(project, done, ready, echo)
        profiles.attach(project, catalog, name, echo=echo)
        return done
    built = image.build(
        project, catalog, name, platforms, "native", channel_map=channel_map, echo=echo
    )
    # (build writes the context of each platform it builds; skipped ones need none)
    echo(f"{name}: {sum(not b.skipped for b in built)} of {len(built)} images built")
    if smoke_is_current(project, name):
        echo(f"{name}: smoke results match the images, smoke skipped")
    else:
        report = smoke(project, name, platforms=platforms, echo=echo)
        if not report.passed:
            where = project.relative(report.results_dir / "summary.md")
            raise PublishError(f"smoke tests failed, not publishing (see {where})")
    published = publish(project, catalog, name, registry, signer=ready, echo=echo)
    profiles.attach(project, catalog, name, echo=echo)
    return published
