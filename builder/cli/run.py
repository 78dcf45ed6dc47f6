"""``run``: a researcher's local JupyterLab on a published image."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from builder.cli.common import Context, echo_err, pass_ctx, project_if_any, registry_option


@click.command("run")
@click.argument("target", metavar="NAME[:TAG] | REGISTRY/NS/NAME[:TAG]")
@registry_option("Where NAME:TAG is published (default: localhost:5000/scistacks).")
@click.option("--port", type=int, default=None, help="Host port on 127.0.0.1 (default: 8888+).")
@click.option(
    "--pull",
    "pull_policy",
    type=click.Choice(["missing", "always", "never"]),
    default="missing",
    show_default=True,
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=".",
    help="Mounted at /home/jovyan/work (default: the current directory).",
)
@click.option("--detach", "-d", is_flag=True, help="Start in the background, print the URL.")
@click.option(
    "--platform",
    default=None,
    metavar="PLATFORM",
    help="linux/amd64 or linux/arm64 (default: the docker host's; another runs emulated).",
)
@click.option(
    "--as-root",
    is_flag=True,
    help="Run the server as root (--allow-root); by default it runs as the image's user.",
)
@pass_ctx
def run_cmd(ctx: Context, target, registry, port, pull_policy, workdir, detach, platform, as_root):
    """Run NAME's image with JupyterLab on 127.0.0.1, the current directory in work/."""
    from builder import run
    from builder.publish import DEFAULT_REGISTRY

    project, _ = project_if_any(ctx, catalog=False)
    plan = run.plan(
        project,
        target,
        registry or DEFAULT_REGISTRY,
        workdir=workdir,
        port=port,
        pull_policy=pull_policy,
        platform=platform,
        as_root=as_root,
    )
    code = run.start(plan, detach, echo=echo_err)
    if detach:
        click.echo(plan.url)
        click.echo(f"running as {plan.name}; stop it with: docker stop {plan.name}", err=True)
    sys.exit(code)
