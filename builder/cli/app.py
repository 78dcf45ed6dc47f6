"""The ``scistacks`` group and how a command ends: errors the user can fix print one
line and exit 1; nothing prints a traceback unless ``SCISTACKS_DEBUG=1``."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

import click

from builder import __version__
from builder.cli.common import Context
from builder.errors import ScistacksError

# command -> builder.cli.MODULE:FUNCTION
COMMANDS = {
    "validate": "specs:validate",
    "show": "specs:show",
    "list": "specs:list_",
    "new": "specs:new",
    "lock": "lock:lock_cmd",
    "bump": "lock:bump_cmd",
    "diff": "lock:diff_cmd",
    "matrix": "lock:matrix_cmd",
    "context": "build:context_cmd",
    "build": "build:build_cmd",
    "smoke": "build:smoke_cmd",
    "collect": "build:collect_cmd",
    "profiles": "publish:profiles_cmd",
    "publish": "publish:publish_cmd",
    "release": "publish:release_cmd",
    "verify": "publish:verify_cmd",
    "catalog": "publish:catalog_cmd",
    "run": "run:run_cmd",
    "hub": "hub:hub_group",
    "yank": "hub:yank_cmd",
}


class LazyGroup(click.Group):
    """Imports a command's module when the command is asked for: ``scistacks lock`` builds
    the options of the lock commands only (``--help`` lists them all)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            module, attr = COMMANDS[name].split(":")
            self.add_command(getattr(importlib.import_module(f"builder.cli.{module}"), attr))
        return self.commands.get(name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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


def main(argv: list[str] | None = None) -> None:
    # scistacks has no pydantic plugins; looking for them reads every installed
    # distribution's entry points, tens of milliseconds of every command
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
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
