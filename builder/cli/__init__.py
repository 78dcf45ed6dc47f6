"""The ``scistacks`` command: a thin layer over the pipeline modules.

Every command accepts ``--root`` (like ``git -C``). ``app`` holds the group and the exit
behaviour; each other module one group of commands, which read and check their options
and call the stage functions.
"""

from builder.cli.app import cli, main

__all__ = ["cli", "main"]
