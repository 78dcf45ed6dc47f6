"""``hub bump``, ``hub check``, ``yank``: hub configs on current, unyanked images."""

from __future__ import annotations

import sys

import click

from builder.cli.common import Context, pass_ctx, project_if_any
from builder.cli.signing import identity_options, trusted

hub_registry_option = click.option(
    "--registry",
    "registries",
    multiple=True,
    metavar="REG/NS",
    help="Where our images are published (repeatable; default: localhost:5000/scistacks).",
)


@click.group("hub")
def hub_group():
    """Keep hub configs (z2jh values, 2i2c/daskhub cluster files) on current, unyanked images."""


@hub_group.command("bump")
@click.argument("configs", nargs=-1, required=True, metavar="CONFIG...")
@hub_registry_option
@click.option("--check", is_flag=True, help="Write nothing; list stale references, exit 1 if any.")
@click.option(
    "--style",
    type=click.Choice(["content", "calver"]),
    help="Tag style to write (default: the one each reference uses; latest etc. -> content).",
)
@pass_ctx
def hub_bump_cmd(ctx: Context, configs, registries, check, style):
    """Rewrite image tags in hub configs to the newest published release that is not yanked."""
    from builder import hub

    project, catalog = project_if_any(ctx)
    results = hub.bump(project, catalog, configs, registries, style=style, write=not check)
    stale = [(ref, new) for r in results for ref, new in r.changes.items()]
    if check:
        for ref, new in stale:
            click.echo(f"{ref.where}: {ref} -> {ref.with_tag(new)}")
    else:
        for r in results:
            click.echo(r.diff, nl=False)
    refs = sum(len(r.config.refs) for r in results)
    done = "stale" if check else "bumped"
    click.echo(
        f"{refs} references, {len(stale)} {done}" if stale else f"{refs} references, all current",
        err=True,
    )
    if check and stale:
        sys.exit(1)


@hub_group.command("check")
@click.argument("configs", nargs=-1, required=True, metavar="CONFIG...")
@hub_registry_option
@click.option(
    "--verify",
    is_flag=True,
    help="Also flag images not signed by --key / --certificate-identity (cosign).",
)
@identity_options
@pass_ctx
def hub_check_cmd(
    ctx: Context, configs, registries, verify, verify_key, cert_identity, oidc_issuer
):
    """Flag references to yanked, mutable (latest), missing or untagged images; exit 1 if any."""
    from builder import hub

    identity = trusted(verify_key, cert_identity, oidc_issuer, wanted=verify)
    project, catalog = project_if_any(ctx)
    report = hub.check(project, catalog, configs, registries, verify=identity)
    for note in report.notes:
        click.echo(f"{note.ref.where}: note: {note.message}", err=True)
    for finding in report.problems:
        click.echo(str(finding))
    for unchecked in report.unchecked:
        click.echo(f"error: {unchecked}", err=True)
    if report.failed:
        sys.exit(1)
    click.echo(f"{len(report.refs)} references, all current/pinned")


@click.command("yank")
@click.argument("name_tag", metavar="NAME:TAG")
@click.option("--reason", required=True, help="Why nobody should use this image (one line).")
@click.option(
    "--registry",
    metavar="REG/NS",
    help="Where the image is published (default: localhost:5000/scistacks).",
)
@click.option("--replaced-by", metavar="TAG", help="The release to use instead.")
@pass_ctx
def yank_cmd(ctx: Context, name_tag, reason, registry, replaced_by):
    """Record that NAME:TAG must not be used: in yanked.yml and as a registry advisory."""
    from builder.hub import yank

    done = yank(ctx.project, ctx.catalog, name_tag, reason, registry, replaced_by=replaced_by)
    state = "yanked" if done.recorded else "already yanked"
    click.echo(f"{state}: {done.reference} ({done.entry.digest}), advisory {done.artifact}")
