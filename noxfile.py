"""Developer and CI sessions. ``nox -s tests`` is the README's test command."""

from __future__ import annotations

import os
import runpy

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, docker tests included (CI=true makes a missing docker fatal)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", "builder", "devtools", "noxfile.py")


@nox.session
def lock(session: nox.Session) -> None:
    """Relock every distribution against the bundled conda-forge snapshot (offline).

    Online, point it at conda-forge itself: ``nox -s lock -- --live``.
    """
    session.install("-e", ".")
    args = ["scistacks", "lock", "--all"]
    if "--live" not in session.posargs:
        snapshot = runpy.run_path("scripts/unpack-snapshot.py")["unpack"]()
        args += ["--channel-map", f"conda-forge={snapshot}"]
    session.run(*args, *[a for a in session.posargs if a != "--live"])
    session.run("scistacks", "lock", "--check")


@nox.session
def benchmarks(session: nox.Session) -> None:
    session.install("-e", ".")
    for script in sorted(os.listdir("benchmarks")):
        if script.endswith(".py") and not script.startswith("_"):
            session.run("python", f"benchmarks/{script}")


@nox.session(name="offline-pangeo")
def offline_pangeo(session: nox.Session) -> None:
    """A real conda Python environment end to end, offline: the channel built from upstream
    sources (cached), then lock, native build, smoke, publish and run of
    ``examples/offline-pangeo`` (needs ``scripts/setup-host.sh``)."""
    session.install("-e", ".[channel]")
    session.run("python", "examples/offline-pangeo/pipeline.py", *session.posargs)
