"""What every command shares: the project and catalog resolved once (``Context``), the
``--platform``, ``--registry`` and ``--channel-map`` options, dates and solve progress."""

from __future__ import annotations

import click

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


def _split_platforms(ctx, param, values) -> tuple[str, ...]:
    return tuple(p.strip() for value in values for p in value.split(",") if p.strip())


def platforms_option(default: str):
    """``--platform`` as every command takes it: repeatable and comma-separated."""
    return click.option(
        "--platform",
        "platforms",
        multiple=True,
        metavar="PLATFORM",
        callback=_split_platforms,
        help="linux/amd64, linux/arm64 (also amd64, linux-64, ...); repeatable or comma-separated; "
        f"default: {default}.",
    )


def registry_option(help_text: str):
    return click.option("--registry", default=None, metavar="REGISTRY/NAMESPACE", help=help_text)


def project_if_any(ctx: Context, catalog: bool = True):
    """(project, catalog), or (None, None) outside a project: researchers and hub admins
    run `run` and `hub` from anywhere. Any other problem of the project still fails."""
    try:
        return ctx.project, (ctx.catalog if catalog else None)
    except ScistacksError as exc:
        if "not a scistacks project" not in exc.message:
            raise
        return None, None


def echo_err(message: str) -> None:
    """Progress and notes go to stderr; stdout keeps a command's result."""
    click.echo(message, err=True)


def channel_map_of(ctx: Context, entries: tuple[str, ...]):
    from builder.lock import ChannelMap

    return ChannelMap.from_sources(ctx.project.root, entries)


channel_map_option = click.option(
    "--channel-map",
    "channel_map",
    multiple=True,
    metavar="CHANNEL=URL",
    help="Solve CHANNEL from a mirror, snapshot or folder; lockfiles keep CHANNEL's canonical URLs. "
    "Also read from $SCISTACKS_CHANNEL_MAP and pyproject's [tool.scistacks.channel-map].",
)


pypi_index_option = click.option(
    "--pypi-index",
    "pypi_index",
    metavar="URL",
    help="Resolve pip: requirements from this index (a mirror); default: pyproject's "
    "[tool.scistacks] pypi-index, else https://pypi.org/simple.",
)
allow_sdist_option = click.option(
    "--allow-sdist",
    is_flag=True,
    help="Let pip: requirements lock source distributions (building them needs a compiler).",
)


def pypi_index_of(ctx: Context, url: str | None):
    from builder.lock.pypi_index import PypiIndexMap

    return PypiIndexMap.from_sources(ctx.project.root, url)


def parse_date(value: str | None):
    import datetime as dt

    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ScistacksError(
            f"expected an ISO date such as 2025-06-30, got {value!r}", field="--exclude-newer"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def progress(req, count, seconds):
    members = ", ".join(m.name for m in req.members)
    click.echo(
        f"  solved {req.group} [{members}] for {req.platform}: {count} packages in {seconds:.2f}s",
        err=True,
    )
