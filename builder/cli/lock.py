"""``lock``, ``bump``, ``diff``, ``matrix``: the locks (stage 2) and the maintainer flow."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from builder.cli.common import (
    Context,
    allow_sdist_option,
    channel_map_of,
    channel_map_option,
    echo_err,
    parse_date,
    pass_ctx,
    progress,
    pypi_index_of,
    pypi_index_option,
)
from builder.errors import ScistacksError

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)


@click.command("lock")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Lock every distribution.")
@click.option(
    "--check", is_flag=True, help="Only check that every lock matches its spec; exit 1 if not."
)
@channel_map_option
@click.option(
    "--exclude-newer",
    metavar="DATE",
    help="Ignore packages published after DATE (reproduce an older state).",
)
@click.option(
    "--engine",
    type=click.Choice(["rattler", "conda-lock"]),
    default="rattler",
    show_default=True,
    help="rattler: in-process, family-consistent. conda-lock: the reference CLI (needs conda/mamba/micromamba).",
)
@pypi_index_option
@allow_sdist_option
@pass_ctx
def lock_cmd(
    ctx: Context, names, all_, check, channel_map, exclude_newer, engine, pypi_index, allow_sdist
):
    """Solve specs into lockfiles/NAME/ (conda-lock.yml, explicit files, packages.md)."""
    from builder import lock as locking

    catalog = ctx.catalog
    selected = catalog.select(names, all_)
    if check:
        stale = locking.check(ctx.project, catalog, selected, pypi_index_of(ctx, pypi_index).index)
        for s in stale:
            click.echo(f"{s.kind}: {s.name}: {s.reason}", err=True)
        if stale:
            sys.exit(1)
        click.echo(f"{len(selected)} lock(s) up to date")
        return
    channel_map = channel_map_of(ctx, channel_map)
    if engine == "conda-lock":
        from builder.lock import condalock_engine

        for name in selected:
            condalock_engine.lock_with_conda_lock(
                ctx.project, catalog, name, channel_map, echo=echo_err
            )
        return
    results = locking.lock(
        ctx.project,
        catalog,
        selected,
        channel_map,
        exclude_newer=parse_date(exclude_newer),
        progress=progress,
        pypi_index=pypi_index_of(ctx, pypi_index),
        allow_sdist=allow_sdist,
    )
    for r in results:
        counts = ", ".join(
            f"{p}: {n}" + (f" + {len(r.locked.pypi[p])} PyPI" if r.locked.pypi.get(p) else "")
            for p, n in r.counts.items()
        )
        state = "updated" if r.changed else "unchanged"
        click.echo(f"{r.name}: {state} ({counts})")


def _diff_markdown(diffs, title: str, limit: int | None = None) -> str:
    from builder.diff import to_markdown

    return to_markdown(diffs, title=title, limit=limit)


@click.command("bump")
@click.argument("args", nargs=-1, metavar="[NAME [PKG[=VERSION|SPEC]...]]")
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="With NAME: refresh every package of NAME (its parent's stay). Alone: every distribution.",
)
@channel_map_option
@click.option("--exclude-newer", metavar="DATE", help="Ignore packages published after DATE.")
@click.option("--dry-run", is_flag=True, help="Solve and print the diff; write nothing.")
@format_option
@pypi_index_option
@allow_sdist_option
@pass_ctx
def bump_cmd(
    ctx: Context, args, all_, channel_map, exclude_newer, dry_run, fmt, pypi_index, allow_sdist
):
    """Move the named packages of NAME's lock, keep every other package at its locked
    version and build, relock NAME's children, and print the diff.

    \b
    scistacks bump pangeo xarray "dask >=2026.1"
    scistacks bump pangeo --all      (NAME's own packages)
    scistacks bump --all             (every distribution, in dependency order)
    """
    from builder.bump import bump
    from builder.diff import to_json

    name, packages = (args[0], list(args[1:])) if args else (None, [])
    result = bump(
        ctx.project,
        ctx.catalog,
        channel_map_of(ctx, channel_map),
        name,
        packages,
        everything=all_,
        exclude_newer=parse_date(exclude_newer),
        progress=progress,
        dry_run=dry_run,
        pypi_index=pypi_index_of(ctx, pypi_index),
        allow_sdist=allow_sdist,
    )
    for r in result.results:
        state = "would change" if dry_run else "updated" if r.changed else "unchanged"
        if dry_run and not any(d.name == r.name and d.changes for d in result.diffs):
            state = "unchanged"
        click.echo(f"{r.name}: {state}", err=True)
    for package in result.unmoved:
        click.echo(f"note: {package} did not move (nothing newer satisfies the specs)", err=True)
    if fmt == "json":
        click.echo(to_json(result.diffs), nl=False)
    else:
        title = (
            f"Bump of {name}: {', '.join(packages) or 'everything'}"
            if name
            else "Bump of everything"
        )
        click.echo(_diff_markdown(result.diffs, title), nl=False)


@click.command("diff")
@click.argument("paths", nargs=-1, metavar="[OLD NEW]", type=click.Path(path_type=Path))
@click.option(
    "--base",
    metavar="REF",
    help="Compare the working tree's lockfiles with those where it left REF, as in "
    "`git diff REF...` (default: HEAD).",
)
@format_option
@click.option(
    "--max-length",
    type=click.IntRange(min=200),
    metavar="CHARS",
    help="Keep markdown under CHARS (a GitHub pull-request body takes 65536).",
)
@pass_ctx
def diff_cmd(ctx: Context, paths, base, fmt, max_length):
    """What changed in the locks: per distribution and platform, packages added, removed,
    upgraded (major/minor/patch), downgraded and rebuilt; direct dependencies first."""
    from builder import diff
    from builder.spec import Catalog

    if paths and (len(paths) != 2 or base):
        raise ScistacksError(
            "give two lockfile paths (OLD NEW), or --base REF, not both", field="diff"
        )
    catalog = Catalog.load(ctx.project, collect=[])  # broken specs only lose the direct marks
    if paths:
        diffs = [diff.diff_files(paths[0], paths[1], catalog)]
    else:
        diffs = diff.diff_tree(ctx.project, base or "HEAD", catalog)
    if fmt == "json":
        click.echo(diff.to_json(diffs), nl=False)
    else:
        click.echo(_diff_markdown(diffs, "Lockfile changes", max_length), nl=False)


@click.command("matrix")
@click.option(
    "--base",
    metavar="REF",
    help="Only the jobs affected by changes since HEAD left REF (default: every job).",
)
@pass_ctx
def matrix_cmd(ctx: Context, base):
    """Print the GitHub Actions job matrix (JSON) of affected distributions x platforms."""
    import json

    from builder import matrix

    catalog = ctx.catalog
    files = matrix.changed_files(ctx.project, base) if base else None
    why = matrix.affected(catalog, files)
    for name, reason in why.items():
        click.echo(f"matrix: {name}: {reason}", err=True)
    click.echo(json.dumps({"include": matrix.jobs(catalog, why)}, separators=(",", ":")))
