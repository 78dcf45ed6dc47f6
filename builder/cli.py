"""The ``scistacks`` command: a thin layer over the pipeline modules.

Every command accepts ``--root`` (like ``git -C``). Errors the user can fix print one line
and exit 1; nothing here prints a traceback unless ``SCISTACKS_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from builder import __version__
from builder.errors import ScistacksError
from builder.project import Project


class Context:
    def __init__(self, root: str | None):
        self._root = root
        self._project: Project | None = None
        self._catalog = None

    @property
    def project(self) -> Project:
        if self._project is None:
            self._project = Project.at(self._root)
        return self._project

    @property
    def catalog(self):
        if self._catalog is None:
            from builder.spec import Catalog

            self._catalog = Catalog.load(self.project)
        return self._catalog


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--root",
    "-C",
    type=click.Path(file_okay=False, path_type=str),
    envvar="SCISTACKS_ROOT",
    help="Project directory holding distributions/ and lockfiles/ (default: current directory).",
)
@click.version_option(__version__, prog_name="scistacks")
@click.pass_context
def cli(ctx: click.Context, root: str | None):
    """Build curated, locked, multi-arch scientific images for JupyterHubs.

    The pipeline: spec -> lock -> context -> build -> smoke -> publish -> profiles.
    """
    ctx.obj = Context(root)


# ---------------------------------------------------------------- specs


@cli.command()
@click.argument("names", nargs=-1)
@pass_ctx
def validate(ctx: Context, names: tuple[str, ...]):
    """Check distribution specs; one line per problem."""
    from builder.spec import Catalog

    problems: list[ScistacksError] = []
    catalog = Catalog.load(ctx.project, collect=problems)
    if names:
        unknown = [n for n in names if n not in catalog.specs and not ctx.project.spec_path(n).exists()]
        for n in unknown:
            problems.append(ScistacksError(f"unknown distribution {n!r}"))
        wanted = {ctx.project.relative(ctx.project.spec_path(n)) for n in names}
        problems = [p for p in problems if p.file is None or p.file in wanted]
    for p in problems:
        click.echo(str(p), err=True)
    if problems:
        sys.exit(1)
    checked = names or catalog.names()
    click.echo(f"{len(checked)} distribution(s) valid: {', '.join(checked)}")


@cli.command()
@click.argument("name")
@pass_ctx
def show(ctx: Context, name: str):
    """Print the effective (merged) spec of NAME as YAML."""
    import yaml

    click.echo(yaml.safe_dump(ctx.catalog.get(name).to_dict(), sort_keys=False, width=100), nl=False)


@cli.command("list")
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
            walk(kid, prefix + ("" if top else ("    " if last else "│   ")), i == len(kids) - 1, False)

    for root in [n for n in catalog.names() if catalog.get(n).parent is None]:
        walk(root, "", True, True)


@cli.command()
@click.argument("name")
@click.option("--from", "source", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="An existing environment.yml (repo2docker/binder style).")
@click.option("--extends", "parent", help="Parent distribution; what it provides is dropped.")
@click.option("--force", is_flag=True, help="Overwrite an existing distribution.")
@pass_ctx
def new(ctx: Context, name: str, source: Path, parent: str | None, force: bool):
    """Create distributions/NAME from an environment.yml."""
    from builder.spec.environment_yaml import new_distribution

    path = new_distribution(ctx.project, name, source, parent=parent, force=force)
    click.echo(f"wrote {ctx.project.relative(path)}")


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="scistacks", standalone_mode=False)
    except ScistacksError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug of ours: still one line, unless debugging
        if os.environ.get("SCISTACKS_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (set SCISTACKS_DEBUG=1 for a traceback)", err=True)
        sys.exit(2)
    sys.exit(0)
