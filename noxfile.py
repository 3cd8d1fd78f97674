"""Sessions for every stage of the course, generated from the folders that exist.

nox                       every stage, then lint, shared and repo
nox -s 07-sqlmodel-neon   one stage, in its own virtualenv
nox -s diff -- 05 06      what stage 06 adds to stage 05 (--code: without the README)
nox -s serve -- 06        run a stage with reload (no argument: the most advanced one)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
SHARED = ROOT / "shared"
# Build output and local data that say nothing about the lesson.
DIFF_EXCLUDES = [
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".venv",
    ".env",
    "*.egg-info",
    "build",
    "*.db",
    "*.db-journal",
]

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True


def stage_dirs() -> list[Path]:
    """The lesson folders in order, then the capstone when it exists."""
    stages = sorted(p for p in (ROOT / "lessons").glob("[0-9][0-9]-*") if p.is_dir())
    if (ROOT / "capstone" / "pyproject.toml").exists():
        stages.append(ROOT / "capstone")
    return stages


def stage_number(stage: Path) -> str:
    """ "06" for lessons/06-settings; the capstone is stage 14, after lesson 13."""
    return "14" if stage.name == "capstone" else stage.name.split("-")[0]


def find_stage(key: str) -> Path:
    """A stage by number ("06", "14"), folder name ("06-settings") or "capstone"."""
    for stage in stage_dirs():
        if stage.name == key or stage_number(stage) == key.zfill(2):
            return stage
    raise ValueError(f"no stage {key!r}; stages: {', '.join(s.name for s in stage_dirs())}")


def uses_shared(stage: Path) -> bool:
    """A stage asks for the shared/ package with `[tool.course] uses-shared = true`."""
    config = tomllib.loads((stage / "pyproject.toml").read_text())
    return bool(config.get("tool", {}).get("course", {}).get("uses-shared", False))


def install_stage(session: nox.Session, stage: Path) -> None:
    if uses_shared(stage):
        session.install("-e", f"{SHARED}[agents,standin]")
    session.install("-e", f"{stage}[test]")


def make_stage_session(stage: Path) -> None:
    def run_stage(session: nox.Session) -> None:
        install_stage(session, stage)
        session.chdir(stage)
        session.run("pytest", *session.posargs)

    run_stage.__doc__ = f"Run the tests of {stage.relative_to(ROOT)}."
    nox.session(name=stage.name)(run_stage)


for _stage in stage_dirs():
    make_stage_session(_stage)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def shared(session: nox.Session) -> None:
    """The tests of the shared/ package (offline model, SSE helpers, stand-in server)."""
    session.install("-e", f"{SHARED}[test]")
    session.chdir(SHARED)
    session.run("pytest", *session.posargs)


@nox.session
def repo(session: nox.Session) -> None:
    """Repository-wide checks: layout, README sections, stage order, the diff tool."""
    session.install("pytest", "nox")
    session.run("pytest", "tests", *session.posargs)


@nox.session
def spec(session: nox.Session) -> None:
    """The capstone's spec fails against lesson 13, served as it is: it checks what the
    capstone adds. (The capstone passing it is its own test, tests/test_spec.py.)"""
    lesson = find_stage("13")
    install_stage(session, lesson)
    session.install("websockets")
    session.chdir(ROOT / "capstone")
    port = "8713"
    with tempfile.TemporaryDirectory() as scratch:
        server = subprocess.Popen(
            [str(Path(session.bin) / "uvicorn"), "task_api.main:app", "--port", port],
            cwd=lesson,
            env={**os.environ, "DATABASE_URL": f"sqlite:///{scratch}/spec.db"},
        )
        try:
            spec_run = ["pytest", "spec", "-q", "-p", "no:cacheprovider", "--wait-seconds", "120"]
            outcome = session.run(
                *spec_run, "--base-url", f"http://127.0.0.1:{port}", silent=True, success_codes=[1]
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    summary = str(outcome).strip().splitlines()[-1]
    if " passed" in summary:
        session.error(f"some of the spec passes against lesson 13: {summary}")
    print(f"lesson 13 against the capstone's spec: {summary}")


@nox.session(python=False)
def diff(session: nox.Session) -> None:
    """Print what one stage adds to another: nox -s diff -- 05 06 [--code], or only the
    files a part of the capstone's guide quotes: nox -s diff -- 13 capstone --part 06."""
    parser = argparse.ArgumentParser(prog="nox -s diff --")
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--code", action="store_true", help="leave out READMEs and snapshots")
    parser.add_argument("--part", help="a part of capstone/guide: its number or file name")
    try:
        arguments = parser.parse_args(session.posargs)
    except SystemExit:
        session.error(
            "usage: nox -s diff -- OLD NEW [--code] [--part PART]   (nox -s diff -- 05 06)"
        )
    try:
        old, new = find_stage(arguments.old), find_stage(arguments.new)
        files = part_files(arguments.part) if arguments.part else None
    except ValueError as error:
        session.error(str(error))
    print(stage_diff(old, new, code_only=arguments.code, files=files), end="")


def part_files(key: str) -> list[str]:
    """The files a part of the capstone's guide quotes (`<!-- quote: PATH -->`)."""
    parts = sorted((ROOT / "capstone" / "guide").glob("[0-9][0-9]-*.md"))
    matches = [part for part in parts if part.stem == key or part.stem.startswith(f"{key}-")]
    if len(matches) != 1:
        names = ", ".join(part.stem for part in parts)
        raise ValueError(f"no part {key!r} in capstone/guide (there are: {names})")
    quoted = re.findall(r"<!-- quote: (\S+) -->", matches[0].read_text(encoding="utf-8"))
    return sorted(set(quoted))


# The code first, then its tests, then the rest; the README (the lesson's text) last.
DIFF_ORDER = ["*/task_api/*", "*/tests/test_*.py", "*/tests/*", "*.toml", "*.example"]


def stage_diff(
    old: Path, new: Path, code_only: bool = False, files: list[str] | None = None
) -> str:
    """What `new` adds to `old`: a summary of the files, then their unified diff.

    `git diff --no-index` on copies of the two folders without caches and local databases:
    a file moved or split (lesson 10's store.py) shows as a rename, not as delete-all and
    add-all. With `code_only`, the README and the OpenAPI snapshot are left out; with
    `files` (paths within a stage), every other file is.
    """
    ignored = [*DIFF_EXCLUDES, *(["README.md", "openapi.json"] if code_only else [])]
    with tempfile.TemporaryDirectory() as folder:
        copies = [Path(folder) / stage.relative_to(ROOT) for stage in (old, new)]
        for stage, copy in zip((old, new), copies, strict=True):
            shutil.copytree(stage, copy, ignore=shutil.ignore_patterns(*ignored))
            if files is not None:
                for path in [path for path in copy.rglob("*") if path.is_file()]:
                    if path.relative_to(copy).as_posix() not in files:
                        path.unlink()
        order = Path(folder) / "order"
        order.write_text("\n".join(DIFF_ORDER) + "\n")
        # -M20%: a file that keeps a fifth of its lines under a new name was moved or split, not
        # replaced (the capstone splits lesson 13's agent.py into agents/).
        options = ["--no-prefix", "--no-color", "-M20%", f"-O{order}", "--stat=99", "--patch"]
        folders = [str(copy.relative_to(folder)) for copy in copies]
        result = subprocess.run(
            ["git", "diff", "--no-index", *options, *folders],
            cwd=folder,
            capture_output=True,
            text=True,
            errors="replace",  # a file git takes for text may still hold a stray byte
            check=False,
        )
    if result.returncode > 1:  # 0: same, 1: different, more: trouble
        raise RuntimeError(result.stderr)
    return result.stdout


@nox.session
def serve(session: nox.Session) -> None:
    """Run one stage with reload: nox -s serve -- 06 (on http://127.0.0.1:8000), or
    nox -s serve -- 06 --port 8001; the capstone when no stage is named."""
    parser = argparse.ArgumentParser(prog="nox -s serve --")
    parser.add_argument("stage", nargs="?", help="a stage's number or name")
    parser.add_argument("--port", type=int, default=8000)
    try:
        arguments = parser.parse_args(session.posargs)
    except SystemExit:
        session.error("usage: nox -s serve -- [STAGE] [--port PORT]")
    try:
        stage = find_stage(arguments.stage) if arguments.stage else stage_dirs()[-1]
    except ValueError as error:
        session.error(str(error))
    install_stage(session, stage)
    session.chdir(stage)
    # Readable logs in a terminal (the capstone writes JSON lines by default), unless set.
    env = {"LOG_FORMAT": "text"} if "LOG_FORMAT" not in os.environ else {}
    port = str(arguments.port)
    session.run(
        "fastapi", "dev", "task_api/main.py", "--host", "127.0.0.1", "--port", port, env=env
    )


# Plain `nox`: every stage, then the checks. `diff` and `serve` run only when named.
nox.options.sessions = [stage.name for stage in stage_dirs()] + ["lint", "shared", "repo", "spec"]
