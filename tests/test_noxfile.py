"""The nox sessions a student and an instructor rely on."""

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, stage_dirs

DIFF_EXCLUDES = [
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    ".venv",
    ".env",
    "*.egg-info",
    "build",
    "*.db",
    "*.db-journal",
]


def nox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nox", "--no-install", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_nox_lists_a_session_per_stage_and_the_tools() -> None:
    result = nox("--list")

    assert result.returncode == 0, result.stderr
    for name in [stage.name for stage in stage_dirs()] + [
        "lint",
        "repo",
        "shared",
        "diff",
        "serve",
    ]:
        assert f"{name}" in result.stdout


@pytest.mark.skipif(shutil.which("diff") is None, reason="no diff program on this machine")
def test_diff_session_prints_what_diff_ru_gives() -> None:
    old, new = stage_dirs()[4], stage_dirs()[5]  # 05 and 06
    expected = subprocess.run(
        [
            "diff",
            "-ruN",
            *(f"--exclude={p}" for p in DIFF_EXCLUDES),
            old.relative_to(ROOT),
            new.relative_to(ROOT),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout

    result = nox("-s", "diff", "--", old.name[:2], new.name[:2])

    assert result.returncode == 0, result.stderr
    assert result.stdout == expected
    assert f"+++ lessons/{new.name}/task_api/config.py" in result.stdout
    files = [line for line in result.stdout.splitlines() if line.startswith(("--- ", "+++ "))]
    assert not [line for line in files if "__pycache__" in line]


def test_diff_session_explains_a_bad_stage() -> None:
    result = nox("-s", "diff", "--", "01", "99")

    assert result.returncode != 0
    assert "no stage '99'" in result.stderr
