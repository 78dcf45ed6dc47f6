"""The ``scistacks`` command: a thin layer over the pipeline modules.

Every command accepts ``--root`` (like ``git -C``). Errors the user can fix print one line
and exit 1; nothing here prints a traceback unless ``SCISTACKS_DEBUG=1``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from builder import __version__
from builder.cli_signing import identity_options, sign_options, signer_from, trusted
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


def _project_if_any(ctx: Context, catalog: bool = True):
    """(project, catalog), or (None, None) outside a project: researchers and hub admins
    run `run` and `hub` from anywhere. Any other problem of the project still fails."""
    try:
        return ctx.project, (ctx.catalog if catalog else None)
    except ScistacksError as exc:
        if "not a scistacks project" not in exc.message:
            raise
        return None, None


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


# ---------------------------------------------------------------- specs


@cli.command()
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


@cli.command()
@click.argument("name")
@pass_ctx
def show(ctx: Context, name: str):
    """Print the effective (merged) spec of NAME as YAML."""
    import yaml

    click.echo(
        yaml.safe_dump(ctx.catalog.get(name).to_dict(), sort_keys=False, width=100), nl=False
    )


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
            walk(
                kid,
                prefix + ("" if top else ("    " if last else "│   ")),
                i == len(kids) - 1,
                False,
            )

    for root in [n for n in catalog.names() if catalog.get(n).parent is None]:
        walk(root, "", True, True)


@cli.command()
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


# ---------------------------------------------------------------- lock


def _channel_map(ctx: Context, entries: tuple[str, ...]):
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


def _parse_date(value: str | None):
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


def _progress(req, count, seconds):
    members = ", ".join(m.name for m in req.members)
    click.echo(
        f"  solved {req.group} [{members}] for {req.platform}: {count} packages in {seconds:.2f}s",
        err=True,
    )


@cli.command("lock")
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
@pass_ctx
def lock_cmd(ctx: Context, names, all_, check, channel_map, exclude_newer, engine):
    """Solve specs into lockfiles/NAME/ (conda-lock.yml, explicit files, packages.md)."""
    from builder import lock as locking

    catalog = ctx.catalog
    selected = catalog.select(names, all_)
    if check:
        stale = locking.check(ctx.project, catalog, selected)
        for s in stale:
            click.echo(f"{s.kind}: {s.name}: {s.reason}", err=True)
        if stale:
            sys.exit(1)
        click.echo(f"{len(selected)} lock(s) up to date")
        return
    cmap = _channel_map(ctx, channel_map)
    if engine == "conda-lock":
        from builder.lock import condalock_engine

        for name in selected:
            condalock_engine.lock_with_conda_lock(
                ctx.project, catalog, name, cmap, echo=lambda m: click.echo(m, err=True)
            )
        return
    results = locking.lock(
        ctx.project,
        catalog,
        selected,
        cmap,
        exclude_newer=_parse_date(exclude_newer),
        progress=_progress,
    )
    for r in results:
        counts = ", ".join(f"{p}: {n}" for p, n in r.counts.items())
        state = "updated" if r.changed else "unchanged"
        click.echo(f"{r.name}: {state} ({counts})")


# ---------------------------------------------------------------- context


@cli.command("context")
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


# ---------------------------------------------------------------- end context


# ---------------------------------------------------------------- bump, diff, matrix (maintainer flow)


def _diff_markdown(diffs, title: str, limit: int | None = None) -> str:
    from builder.diff import to_markdown

    return to_markdown(diffs, title=title, limit=limit)


@cli.command("bump")
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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)
@pass_ctx
def bump_cmd(ctx: Context, args, all_, channel_map, exclude_newer, dry_run, fmt):
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
        _channel_map(ctx, channel_map),
        name,
        packages,
        everything=all_,
        exclude_newer=_parse_date(exclude_newer),
        progress=_progress,
        dry_run=dry_run,
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


@cli.command("diff")
@click.argument("paths", nargs=-1, metavar="[OLD NEW]", type=click.Path(path_type=Path))
@click.option(
    "--base",
    metavar="REF",
    help="Compare the working tree's lockfiles with those where it left REF, as in "
    "`git diff REF...` (default: HEAD).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)
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


@cli.command("matrix")
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


# ---------------------------------------------------------------- end bump, diff, matrix


# ---------------------------------------------------------------- build


@cli.command("build")
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
        channel_map=_channel_map(ctx, channel_map),
        base_image=base_image,
        tag=tag,
        rebuild=rebuild,
        echo=lambda m: click.echo(m, err=True),
    )
    for b in built:
        click.echo(f"{b.oci_platform}  {b.ref}  {b.image_id}{'  (unchanged)' if b.skipped else ''}")


# ---------------------------------------------------------------- end build


# ---------------------------------------------------------------- smoke


@cli.command("smoke")
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
        echo=lambda m: click.echo(m, err=True),
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


# ---------------------------------------------------------------- end smoke


# ---------------------------------------------------------------- collect (CI: one runner per platform)


@cli.command("collect")
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
    for name in ctx.project.distribution_names():
        records = [r / "build" / "images" / f"{name}.json" for r in runs]
        records = [p for p in records if p.is_file()]
        results = [r / "build" / "smoke" / name for r in runs]
        results = [d for d in results if (d / "results.json").is_file()]
        found = found or bool(records or results)
        if records:
            merged = merge_records(ctx.project, name, records)
            click.echo(f"{name}: images for {', '.join(merged['platforms'])}")
        if results:
            merged = merge_results(ctx.project, name, results)
            state = "passed" if merged["passed"] else "FAILED"
            click.echo(f"{name}: smoke {state} on {', '.join(merged['platforms'])}")
    if not found:
        raise ScistacksError(
            "nothing to collect: no build/images/NAME.json or build/smoke/NAME/results.json "
            "of this project's distributions",
            file=", ".join(map(str, runs)),
        )


# ---------------------------------------------------------------- end collect


# ---------------------------------------------------------------- profiles


@cli.command("profiles")
@click.argument("names", nargs=-1)
@click.option(
    "--registry",
    required=True,
    envvar="SCISTACKS_REGISTRY",
    metavar="REG/NS",
    help="Where the images are published, e.g. ghcr.io/org (also $SCISTACKS_REGISTRY).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["z2jh", "kubespawner"]),
    default="z2jh",
    show_default=True,
    help="z2jh: singleuser.profileList values. kubespawner: c.KubeSpawner.profile_list Python.",
)
@click.option("--digest", is_flag=True, help="Pin by digest from build/publish/NAME.json.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--attach",
    is_flag=True,
    help="Also attach each snippet to its published image (from build/publish/NAME.json).",
)
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Also list images not published in the registry (each named on stderr).",
)
@pass_ctx
def profiles_cmd(ctx: Context, names, registry, fmt, digest, output, attach, all_):
    """Print (or write) a KubeSpawner profile_list for the distributions with a hub section."""
    from builder.profiles import attach as attach_to_image
    from builder.profiles import generate

    if attach:
        from builder.publish import record_path

        for name in ctx.catalog.select(list(names)):
            # without names: the distributions published from here (CI publishes what changed)
            if names or record_path(ctx.project, name).is_file():
                attach_to_image(
                    ctx.project, ctx.catalog, name, echo=lambda m: click.echo(m, err=True)
                )
    text = generate(
        ctx.project,
        ctx.catalog,
        list(names),
        registry,
        fmt=fmt,
        digest=digest,
        output=output,
        unpublished=all_,
        echo=lambda m: click.echo(m, err=True),
    )
    if output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {ctx.project.relative(output)}", err=True)


# ---------------------------------------------------------------- end profiles


# ---------------------------------------------------------------- publish / release


@cli.command("publish")
@click.argument("name")
@registry_option(
    "Where to push, e.g. ghcr.io/org (default: localhost:5000/scistacks, started if absent)."
)
@sign_options
@pass_ctx
def publish_cmd(ctx: Context, name, registry, sign, sign_key, keyless):
    """Push NAME's smoke-tested images as one multi-arch image, tag it, attach its SBOM."""
    from builder.publish import publish

    signer = signer_from(sign, sign_key, keyless)
    result = publish(
        ctx.project,
        ctx.catalog,
        name,
        _registry_or_local(registry),
        signer=signer,
        echo=lambda m: click.echo(m, err=True),
    )
    _echo_published(result)


def _registry_or_local(registry: str | None) -> str:
    """No --registry: the local one on 127.0.0.1:5000, started when nothing answers."""
    if registry:
        return registry
    from builder.publish import DEFAULT_REGISTRY
    from builder.publish.local_registry import LocalRegistry

    LocalRegistry().ensure(echo=lambda m: click.echo(m, err=True))
    return DEFAULT_REGISTRY


def _echo_published(result) -> None:
    state = "unchanged" if result.unchanged else "published"
    tags = ", ".join(result.immutable + result.mutable)
    click.echo(f"{state}: {result.repository}@{result.digest} ({tags})")


@cli.command("release")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every distribution.")
@registry_option("Where to push (default: localhost:5000/scistacks, started if absent).")
@platforms_option("every linux platform")
@channel_map_option
@sign_options
@pass_ctx
def release_cmd(
    ctx: Context, names, all_, registry, platforms, channel_map, sign, sign_key, keyless
):
    """lock --check, build, smoke and publish NAME, skipping every stage that is current."""
    from builder.release import release

    signer = signer_from(sign, sign_key, keyless)

    if all_:
        names = tuple(ctx.project.distribution_names())
    if not names:
        raise ScistacksError("name a distribution, or pass --all")
    registry = _registry_or_local(registry)
    for name in names:
        result = release(
            ctx.project,
            ctx.catalog,
            name,
            registry,
            platforms=platforms or None,
            channel_map=_channel_map(ctx, channel_map),
            signer=signer,
            echo=lambda m: click.echo(m, err=True),
        )
        _echo_published(result)


# ---------------------------------------------------------------- end publish / release


# ---------------------------------------------------------------- verify


@cli.command("verify")
@click.argument("target", metavar="NAME:TAG | REGISTRY/NS/NAME[:TAG|@DIGEST]")
@registry_option("Where NAME:TAG is published (default: localhost:5000/scistacks).")
@identity_options
def verify_cmd(target, registry, verify_key, cert_identity, oidc_issuer):
    """Check an image's cosign signature (and its platforms' and SBOM's); exit 1 if not."""
    from builder.publish import DEFAULT_REGISTRY
    from builder.publish.verify import verify_image

    identity = trusted(verify_key, cert_identity, oidc_issuer)
    result = verify_image(target, registry or DEFAULT_REGISTRY, identity)
    click.echo(result.line)
    if not result.verified:
        sys.exit(1)


# ---------------------------------------------------------------- end verify


# ---------------------------------------------------------------- catalog


@cli.command("catalog")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the static site (replaced as a whole, in one rename).",
)
@registry_option("Where the images are published (default: localhost:5000/scistacks).")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when the registry does not answer or an artifact is damaged.",
)
@pass_ctx
def catalog_cmd(ctx: Context, output, registry, strict):
    """Write a static web site of the images: releases, packages, diffs, sizes, search."""
    from builder.catalog import build
    from builder.publish import DEFAULT_REGISTRY

    built = build(
        ctx.project,
        ctx.catalog,
        output,
        registry or DEFAULT_REGISTRY,
        strict=strict,
        echo=lambda m: click.echo(m, err=True),
    )
    state = "lockfiles only" if built.registry_error else "with releases"
    click.echo(f"wrote {built.pages} pages to {output} ({state}) in {built.seconds:.1f}s")


# ---------------------------------------------------------------- end catalog


# ---------------------------------------------------------------- run (researchers)


@cli.command("run")
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

    project, _ = _project_if_any(ctx, catalog=False)
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
    code = run.start(plan, detach, echo=lambda m: click.echo(m, err=True))
    if detach:
        click.echo(plan.url)
        click.echo(f"running as {plan.name}; stop it with: docker stop {plan.name}", err=True)
    sys.exit(code)


# ---------------------------------------------------------------- end run


# ---------------------------------------------------------------- hub

hub_registry_option = click.option(
    "--registry",
    "registries",
    multiple=True,
    metavar="REG/NS",
    help="Where our images are published (repeatable; default: localhost:5000/scistacks).",
)


@cli.group("hub")
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

    project, catalog = _project_if_any(ctx)
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
    project, catalog = _project_if_any(ctx)
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


@cli.command("yank")
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


# ---------------------------------------------------------------- end hub


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
