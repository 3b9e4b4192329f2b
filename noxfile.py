"""Developer sessions: ``nox -s tests lint typecheck docs plugin bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

ZOO = "examples/plugins/dermkit-keras-zoo"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (README's test command)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples")
    session.run("ruff", "format", "--check", "src")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy", "src")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site with --strict, then check every internal link and image in it.

    The command-line and configuration references are generated while building, by
    the hooks in docs/hooks/. The runnable examples in the pages are tests
    (tests/test_docs.py), run by the ``tests`` session.
    """
    session.install("-e", ".[docs]")
    site = f"{session.create_tmp()}/site"
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})
    session.run("python", "docs/tools/check_site.py", site)


@nox.session
def plugin(session: nox.Session) -> None:
    """The example plugin package: installed from its folder, then its own tests."""
    session.install("-e", ".[dev]")
    session.install("-e", ZOO)
    session.chdir(ZOO)
    session.run("mypy", "src", "tests")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks on the real data set (needs DERMKIT_HAM10000)."""
    session.install("-e", ".")
    session.run("python", "benchmarks/pipeline.py", *session.posargs)
