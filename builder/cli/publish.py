"""``publish``, ``release``, ``verify``, ``profiles``, ``catalog``: stages 6 to 8."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from builder.cli.common import (
    Context,
    channel_map_of,
    channel_map_option,
    echo_err,
    pass_ctx,
    platforms_option,
    registry_option,
)
from builder.cli.signing import identity_options, sign_options, signer_from, trusted
from builder.errors import ScistacksError


@click.command("profiles")
@click.argument("names", nargs=-1)
@click.option(
    "--registry",
    required=True,
    envvar="SCISTACKS_REGISTRY",
    metavar="REG/NS",
    help="Where the images are published, e.g. ghcr.io/org (also $SCISTACKS_REGISTRY).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["z2jh", "kubespawner"]),
    default="z2jh",
    show_default=True,
    help="z2jh: singleuser.profileList values. kubespawner: c.KubeSpawner.profile_list Python.",
)
@click.option("--digest", is_flag=True, help="Pin by digest from build/publish/NAME.json.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--attach",
    is_flag=True,
    help="Also attach each snippet to its published image (from build/publish/NAME.json).",
)
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Also list images not published in the registry (each named on stderr).",
)
@pass_ctx
def profiles_cmd(ctx: Context, names, registry, fmt, digest, output, attach, all_):
    """Print (or write) a KubeSpawner profile_list for the distributions with a hub section."""
    from builder.profiles import attach as attach_to_image
    from builder.profiles import generate

    if attach:
        for name in ctx.catalog.select(list(names)):
            # without names: the distributions published from here (CI publishes what changed)
            if names or ctx.project.publish_record(name).is_file():
                attach_to_image(ctx.project, ctx.catalog, name, echo=echo_err)
    text = generate(
        ctx.project,
        ctx.catalog,
        list(names),
        registry,
        fmt=fmt,
        digest=digest,
        output=output,
        unpublished=all_,
        echo=echo_err,
    )
    if output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {ctx.project.relative(output)}", err=True)


@click.command("publish")
@click.argument("name")
@registry_option(
    "Where to push, e.g. ghcr.io/org (default: localhost:5000/scistacks, started if absent)."
)
@sign_options
@pass_ctx
def publish_cmd(ctx: Context, name, registry, sign, sign_key, keyless):
    """Push NAME's smoke-tested images as one multi-arch image, tag it, attach its SBOM."""
    from builder.publish import publish

    signer = signer_from(sign, sign_key, keyless)
    result = publish(
        ctx.project,
        ctx.catalog,
        name,
        _registry_or_local(registry),
        signer=signer,
        echo=echo_err,
    )
    _echo_published(result)


def _registry_or_local(registry: str | None) -> str:
    """No --registry: the local one on 127.0.0.1:5000, started when nothing answers."""
    if registry:
        return registry
    from builder.publish import DEFAULT_REGISTRY
    from builder.publish.local_registry import LocalRegistry

    LocalRegistry().ensure(echo=echo_err)
    return DEFAULT_REGISTRY


def _echo_published(result) -> None:
    state = "unchanged" if result.unchanged else "published"
    tags = ", ".join(result.immutable + result.mutable)
    click.echo(f"{state}: {result.repository}@{result.digest} ({tags})")


@click.command("release")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every distribution.")
@registry_option("Where to push (default: localhost:5000/scistacks, started if absent).")
@platforms_option("every linux platform")
@channel_map_option
@sign_options
@pass_ctx
def release_cmd(
    ctx: Context, names, all_, registry, platforms, channel_map, sign, sign_key, keyless
):
    """lock --check, build, smoke and publish NAME, skipping every stage that is current."""
    from builder.release import release

    signer = signer_from(sign, sign_key, keyless)

    if all_:
        names = tuple(ctx.project.distribution_names())
    if not names:
        raise ScistacksError("name a distribution, or pass --all")
    registry = _registry_or_local(registry)
    for name in names:
        result = release(
            ctx.project,
            ctx.catalog,
            name,
            registry,
            platforms=platforms or None,
            channel_map=channel_map_of(ctx, channel_map),
            signer=signer,
            echo=echo_err,
        )
        _echo_published(result)


@click.command("verify")
@click.argument("target", metavar="NAME:TAG | REGISTRY/NS/NAME[:TAG|@DIGEST]")
@registry_option("Where NAME:TAG is published (default: localhost:5000/scistacks).")
@identity_options
def verify_cmd(target, registry, verify_key, cert_identity, oidc_issuer):
    """Check an image's cosign signature (and its platforms' and SBOM's); exit 1 if not."""
    from builder.publish import DEFAULT_REGISTRY
    from builder.publish.verify import verify_image

    identity = trusted(verify_key, cert_identity, oidc_issuer)
    result = verify_image(target, registry or DEFAULT_REGISTRY, identity)
    click.echo(result.line)
    if not result.verified:
        sys.exit(1)


@click.command("catalog")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the static site (replaced as a whole, in one rename).",
)
@registry_option("Where the images are published (default: localhost:5000/scistacks).")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when the registry does not answer or an artifact is damaged.",
)
@pass_ctx
def catalog_cmd(ctx: Context, output, registry, strict):
    """Write a static web site of the images: releases, packages, diffs, sizes, search."""
    from builder.catalog import build
    from builder.publish import DEFAULT_REGISTRY

    built = build(
        ctx.project,
        ctx.catalog,
        output,
        registry or DEFAULT_REGISTRY,
        strict=strict,
        echo=echo_err,
    )
    state = "lockfiles only" if built.registry_error else "with releases"
    click.echo(f"wrote {built.pages} pages to {output} ({state}) in {built.seconds:.1f}s")
