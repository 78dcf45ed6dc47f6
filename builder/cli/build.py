"""``context``, ``build``, ``smoke``, ``collect``: stages 3 to 5, and joining CI runners' records."""

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
)
from builder.errors import ScistacksError
from builder.project import Project


@click.command("context")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every distribution.")
@platforms_option("every locked image platform")
@pass_ctx
def context_cmd(ctx: Context, names, all_, platforms):
    """Write repo2docker build contexts images/NAME/PLATFORM/ from the locks."""
    from builder.context import write_contexts

    catalog = ctx.catalog
    selected = catalog.select(names, all_)
    wanted = list(platforms) or None
    results = write_contexts(ctx.project, catalog, selected, wanted)
    for r in results:
        state = "updated" if r.changed else "unchanged"
        click.echo(f"{ctx.project.relative(r.path)}: {state}")
    for name in selected:
        if not any(r.name == name for r in results):
            click.echo(f"{name}: not locked for {', '.join(wanted or [])} (skipped)", err=True)


@click.command("build")
@click.argument("name")
@platforms_option("the lock's linux platforms")
@click.option(
    "--engine",
    type=click.Choice(["native", "repo2docker"]),
    default="native",
    show_default=True,
    help="native: the lock exactly, reproducible layers. repo2docker: the reference tool (needs conda-forge).",
)
@click.option(
    "--base-image",
    metavar="REF",
    help="Base image ({arch} expands to amd64/arm64); default: the spec's base_image.",
)
@click.option(
    "--tag",
    metavar="TAG",
    help="Local tag or reference instead of scistacks/NAME:<lock hash>-<arch>.",
)
@click.option("--rebuild", is_flag=True, help="Build even if an image of this lock already exists.")
@channel_map_option
@pass_ctx
def build_cmd(ctx: Context, name, platforms, engine, base_image, tag, rebuild, channel_map):
    """Build NAME's image per platform from its lock and context (local images, build/images/NAME.json)."""
    from builder import image

    built = image.build(
        ctx.project,
        ctx.catalog,
        name,
        platforms,
        engine,
        channel_map=channel_map_of(ctx, channel_map),
        base_image=base_image,
        tag=tag,
        rebuild=rebuild,
        echo=echo_err,
    )
    for b in built:
        click.echo(f"{b.oci_platform}  {b.ref}  {b.image_id}{'  (unchanged)' if b.skipped else ''}")


@click.command("smoke")
@click.argument("name")
@platforms_option("every built platform")
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="REF",
    help="Test this local image instead of build/images/NAME.json's (one per --platform).",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), help="Containers at once (default: CPU count)."
)
@click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Results folder (default: build/smoke/NAME).",
)
@pass_ctx
def smoke_cmd(ctx: Context, name, platforms, images, jobs, results_dir):
    """Run NAME's notebooks, imports and hub checks inside its images; exit 1 if any fail."""
    from builder.smoke import smoke

    report = smoke(
        ctx.project,
        name,
        platforms=platforms,
        images=images,
        jobs=jobs,
        results_dir=results_dir,
        echo=echo_err,
    )
    for target in report.targets:
        checks = report.platform_checks(target.platform)
        failed = [c for c in checks if c.failed]
        if failed:
            state = f"FAILED ({len(failed)} of {len(checks)} checks)"
        else:
            state = f"passed ({len(checks)} checks)"
        click.echo(f"{name} {target.oci_platform}: {state}")
    click.echo(f"results: {ctx.project.relative(report.results_dir)}/summary.md")
    if not report.passed:
        sys.exit(1)


@click.command("collect")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_ctx
def collect_cmd(ctx: Context, runs):
    """Join build/ records and smoke results from other machines (RUN/build/...) into build/."""
    from builder.image import merge_records
    from builder.smoke import merge_results

    for run in runs:  # a mistyped folder must not be a silent no-op
        if not run.is_dir():
            raise ScistacksError(
                "no such folder (expected a runner's checkout with build/)", file=run
            )
        if not (run / "build").is_dir():
            raise ScistacksError("not a runner's output: no build/ folder in it", file=run)
    found = False
    checkouts = [Project(r.resolve()) for r in runs]  # each runner's build/ is a project's
    for name in ctx.project.distribution_names():
        records = [c.image_record(name) for c in checkouts if c.image_record(name).is_file()]
        results = [c.results_dir(name) for c in checkouts if c.smoke_results(name).is_file()]
        found = found or bool(records or results)
        if records:
            images = merge_records(ctx.project, name, records)
            click.echo(f"{name}: images for {', '.join(images.platforms)}")
        if results:
            smoke = merge_results(ctx.project, name, results)
            state = "passed" if smoke.passed else "FAILED"
            click.echo(f"{name}: smoke {state} on {', '.join(smoke.platforms)}")
    if not found:
        raise ScistacksError(
            "nothing to collect: no build/images/NAME.json or build/smoke/NAME/results.json "
            "of this project's distributions",
            file=", ".join(map(str, runs)),
        )
