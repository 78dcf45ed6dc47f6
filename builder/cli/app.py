"""The ``scistacks`` group and how a command ends: errors the user can fix print one
line and exit 1; nothing prints a traceback unless ``SCISTACKS_DEBUG=1``."""

from __future__ import annotations

import contextlib
import os
import sys

import click

from builder import __version__
from builder.cli import build, hub, lock, publish, run, specs
from builder.cli.common import Context
from builder.errors import ScistacksError


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

    The pipeline: spec -> lock -> context -> build -> smoke -> publish -> profiles,
    then `run` for researchers and `hub` for hub admins.
    """
    ctx.obj = Context(root)


for command in (
    specs.validate,
    specs.show,
    specs.list_,
    specs.new,
    lock.lock_cmd,
    lock.bump_cmd,
    lock.diff_cmd,
    lock.matrix_cmd,
    build.context_cmd,
    build.build_cmd,
    build.smoke_cmd,
    build.collect_cmd,
    publish.profiles_cmd,
    publish.publish_cmd,
    publish.release_cmd,
    publish.verify_cmd,
    publish.catalog_cmd,
    run.run_cmd,
    hub.hub_group,
    hub.yank_cmd,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    code = _run(argv)
    if "rattler" in sys.modules:
        # py-rattler's runtime threads can abort the interpreter while it shuts down
        # (SIGABRT after our work is done and written): leave without finalizers
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    """Run one command; any failure is one line on stderr and an exit code."""
    try:
        cli.main(args=argv, prog_name="scistacks", standalone_mode=False)
    except ScistacksError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # a command's own exit code (e.g. `run`)
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        click.echo(str(exc.code), err=True)
        return 1
    except BrokenPipeError:
        return 1
    except Exception as exc:  # a bug of ours: still one line, unless debugging
        if os.environ.get("SCISTACKS_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (set SCISTACKS_DEBUG=1 for a traceback)",
            err=True,
        )
        return 2
    return 0
