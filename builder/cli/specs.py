"""``validate``, ``show``, ``list``, ``new``: the specs (stage 1)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from builder.cli.common import Context, pass_ctx
from builder.errors import ScistacksError


@click.command()
@click.argument("names", nargs=-1)
@pass_ctx
def validate(ctx: Context, names: tuple[str, ...]):
    """Check distribution specs; one line per problem."""
    from builder.spec import Catalog

    problems: list[ScistacksError] = []
    catalog = Catalog.load(ctx.project, collect=problems, files=True)
    if names:
        unknown = [
            n for n in names if n not in catalog.specs and not ctx.project.spec_path(n).exists()
        ]
        for n in unknown:
            problems.append(ScistacksError(f"unknown distribution {n!r}"))
        # a name is only valid if its whole extends chain is: keep its ancestors' problems
        wanted: set[str] = set()
        for n in names:
            while n and ctx.project.relative(ctx.project.spec_path(n)) not in wanted:
                wanted.add(ctx.project.relative(ctx.project.spec_path(n)))
                n = catalog.specs[n].extends if n in catalog.specs else None
        problems = [p for p in problems if p.file is None or p.file in wanted]
    for p in problems:
        click.echo(str(p), err=True)
    if problems:
        sys.exit(1)
    checked = names or catalog.names()
    click.echo(f"{len(checked)} distribution(s) valid: {', '.join(checked)}")


@click.command()
@click.argument("name")
@pass_ctx
def show(ctx: Context, name: str):
    """Print the effective (merged) spec of NAME as YAML."""
    import yaml

    click.echo(
        yaml.safe_dump(ctx.catalog.get(name).to_dict(), sort_keys=False, width=100), nl=False
    )


@click.command("list")
@pass_ctx
def list_(ctx: Context):
    """Show distributions as a tree of parents and children."""
    catalog = ctx.catalog

    def walk(name: str, prefix: str, last: bool, top: bool):
        dist = catalog.get(name)
        branch = "" if top else ("└── " if last else "├── ")
        platforms = ",".join(dist.platforms)
        click.echo(f"{prefix}{branch}{name}  [{platforms}]  {dist.description}".rstrip())
        kids = catalog.children(name)
        for i, kid in enumerate(kids):
            walk(
                kid,
                prefix + ("" if top else ("    " if last else "│   ")),
                i == len(kids) - 1,
                False,
            )

    for root in [n for n in catalog.names() if catalog.get(n).parent is None]:
        walk(root, "", True, True)


@click.command()
@click.argument("name")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="An existing environment.yml (repo2docker/binder style).",
)
@click.option("--extends", "parent", help="Parent distribution; what it provides is dropped.")
@click.option("--force", is_flag=True, help="Overwrite an existing distribution.")
@pass_ctx
def new(ctx: Context, name: str, source: Path, parent: str | None, force: bool):
    """Create distributions/NAME from an environment.yml."""
    from builder.spec.environment_yaml import new_distribution

    path = new_distribution(ctx.project, name, source, parent=parent, force=force)
    click.echo(f"wrote {ctx.project.relative(path)}")
