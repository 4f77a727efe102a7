"""Task runner: ``nox -s demo`` and ``nox -s tests`` are the README's two commands."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tomllib

import nox

# virtualenv (a dependency of nox) carries its own pip: no ensurepip needed, so the sessions
# also run where the system Python has no venv module with pip (stock Debian 12).
nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]  # `nox` alone: what CI checks
nox.options.reuse_venv = "yes"

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _chromium(session: nox.Session) -> None:
    """Debian's Chromium and its driver for the browser tests; installed only under CI.

    Elsewhere a missing Chromium makes the browser tests skip, saying why.
    """
    if os.environ.get("CI") != "true" or (
        shutil.which("chromium") and shutil.which("chromedriver")
    ):
        return
    session.run("apt-get", "update", "-q", external=True)
    session.run(
        "apt-get", "install", "-y", "-q", "--no-install-recommends",
        "chromium", "chromium-driver", external=True, env={"DEBIAN_FRONTEND": "noninteractive"},
    )  # fmt: skip


# The suites whose pytest-asyncio mode matters to users: the emulator's pytest plugin, the
# examples and the docs' pytest snippets, which users' own suites copy (strict or auto).
STRICT_MODE = [
    "tests/test_pytest_plugin_modes.py",
    "tests/test_examples.py",
    "tests/test_docs_snippets.py",
]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit and integration tests, with branch coverage of the package enforced.

    The suite runs on pytest-asyncio in auto mode (pyproject.toml), spread over one worker per
    core (pytest-xdist), then the suites users copy run again in strict mode. Arguments after
    ``--`` go to both runs.
    """
    _chromium(session)
    session.install("-e", ".[tests]")
    session.run(
        "pytest",
        "-n",
        os.environ.get("SUPRSEND_TEST_WORKERS", "auto"),
        "--cov=suprsend_async",
        "--cov-branch",
        "--cov-report=term-missing:skip-covered",
        "--cov-fail-under=95",
        *session.posargs,
    )
    session.run("pytest", "-q", "-o", "asyncio_mode=strict", *STRICT_MODE, *session.posargs)


def _pydantic_requirement() -> tuple[str, str]:
    """pyproject.toml's pydantic requirement (``pydantic>=2.11,<3``) and its floor (``2.11``)."""
    with open("pyproject.toml", "rb") as f:
        dependencies: list[str] = tomllib.load(f)["project"]["dependencies"]
    requirement = next(d for d in dependencies if re.match(r"pydantic\b", d))
    floor = re.search(r">=\s*([0-9.]+)", requirement)
    if floor is None:
        raise RuntimeError(f"no lower bound in {requirement!r}")
    return requirement, floor.group(1)


PYDANTIC, PYDANTIC_FLOOR = _pydantic_requirement()


@nox.session(python=PYTHON)
@nox.parametrize("pydantic", ["lowest", "newest"])
def pydantic_range(session: nox.Session, pydantic: str) -> None:
    """The model and pre-check tests against the lowest supported pydantic and the newest.

    The lowest is the floor in pyproject.toml, installed exactly; the newest is the latest
    release the same requirement allows. The pre-check reads pydantic-core's schemas, whose
    shape is not a public API: this is where a release that changes them shows up.
    """
    session.install("-e", ".[tests]")
    if pydantic == "lowest":
        session.install(f"pydantic=={PYDANTIC_FLOOR}")
    else:
        session.install("--upgrade", PYDANTIC)
    session.run("python", "-c", "import pydantic; print('pydantic', pydantic.VERSION)")
    session.run(
        "pytest",
        "tests/test_models.py",
        "tests/test_precheck.py",
        "tests/test_fuzz.py",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff==0.17.6")  # the pin of pyproject.toml's tests extra
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package and the tests."""
    session.install("-e", ".[tests]", "mypy>=1.11", "nox")
    session.run("mypy", "--strict")


@nox.session(python=PYTHON)
def package(session: nox.Session) -> None:
    """Build the wheel, install it in a fresh venv, and check what a user gets."""
    dist = os.path.join(session.create_tmp(), "dist")
    session.install("build")
    session.run("python", "-m", "build", "--wheel", "--outdir", dist)
    wheels = [f for f in os.listdir(dist) if f.endswith(".whl")]
    session.run("python", "-m", "venv", os.path.join(dist, "venv"))
    venv_python = os.path.join(dist, "venv", "bin", "python")
    session.run(
        venv_python, "-m", "pip", "install", "-q", os.path.join(dist, wheels[0]), external=True
    )
    session.run(
        venv_python,
        "-c",
        "import importlib.resources as r, suprsend_async as s;"
        "assert r.files('suprsend_async').joinpath('py.typed').is_file();"
        "assert r.files('suprsend_async').joinpath('emulator', 'inbox', 'index.html').is_file();"
        "print('suprsend_async', s.__version__, 'imports, py.typed and the inbox page present')",
        external=True,
    )
    session.run(os.path.join(dist, "venv", "bin", "suprsend-async"), "--help", external=True)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: the user guide's scenarios through the SDK against the embedded emulator."""
    session.install("-e", ".[emulator]")
    session.run("suprsend-async", "demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks side by side (suprsend-async, the official SDK, raw httpx and aiohttp); writes
    ratios. ``nox -s bench -- --only cpu`` prints the client CPU sweep alone."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=PYTHON)
def bench_celery(session: nox.Session) -> None:
    """Celery fan-out records/s with 1, 2 and 4 worker processes (needs redis-server)."""
    session.install("-e", ".[bench,celery]")
    session.run("python", "benchmarks/celery_fanout.py", *session.posargs)


@nox.session(python=PYTHON)
def stress(session: nox.Session) -> None:
    """The reliability suite at full size: 20,000 bulk records and 2,000 singles under chaos,
    and the accounting test cancelled at 1,000 seeded points."""
    session.install("-e", ".[tests]")
    session.env["SUPRSEND_CHAOS_RECORDS"] = session.env.get("SUPRSEND_CHAOS_RECORDS", "20000")
    session.env["SUPRSEND_ACCOUNTING_SEEDS"] = session.env.get("SUPRSEND_ACCOUNTING_SEEDS", "1000")
    session.run(
        "pytest",
        "tests/integration/test_faults_exactly_once.py",
        "tests/integration/test_malformed_server.py",
        "tests/integration/test_accounting.py",
        "tests/integration/test_interrupt.py",
        "tests/test_fuzz.py",
        "tests/bulk/test_ledger.py",
        "--hypothesis-profile=stress",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site with --strict (offline: no plugin fetches anything)."""
    session.install("-e", ".[docs]")
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", os.path.join(session.create_tmp(), "site")
    )
