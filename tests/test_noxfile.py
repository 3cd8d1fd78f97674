"""The nox sessions a student and an instructor rely on."""

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, stage_dirs


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
        "spec",
    ]:
        assert f"{name}" in result.stdout


def changed_files(diff: str) -> list[str]:
    """The files of a unified diff, in the order it shows them (new names for renames)."""
    return [line.removeprefix("+++ ") for line in diff.splitlines() if line.startswith("+++ ")]


@pytest.mark.skipif(shutil.which("git") is None, reason="no git on this machine")
def test_diff_session_shows_the_code_first_and_the_lesson_last() -> None:
    old, new = stage_dirs()[4], stage_dirs()[5]  # 05 and 06

    result = nox("-s", "diff", "--", old.name[:2], new.name[:2])

    assert result.returncode == 0, result.stderr
    files = changed_files(result.stdout)
    assert files[0].startswith(f"lessons/{new.name}/task_api/")
    assert files[-1] == f"lessons/{new.name}/README.md"
    assert f"lessons/{new.name}/task_api/config.py" in files
    assert not [name for name in files if "__pycache__" in name or name.endswith(".db")]


@pytest.mark.skipif(shutil.which("git") is None, reason="no git on this machine")
def test_diff_session_leaves_the_lesson_text_out_when_asked() -> None:
    result = nox("-s", "diff", "--", "05", "06", "--code")

    assert result.returncode == 0, result.stderr
    files = changed_files(result.stdout)
    assert files and not [name for name in files if name.endswith(("README.md", "openapi.json"))]


@pytest.mark.skipif(shutil.which("git") is None, reason="no git on this machine")
def test_diff_session_shows_a_moved_file_as_a_move() -> None:
    result = nox("-s", "diff", "--", "09", "10", "--code")

    assert result.returncode == 0, result.stderr
    assert "rename from lessons/09-argon2-rate-limiting/task_api/store.py" in result.stdout
    assert "/dev/null" not in {
        line[4:] for line in result.stdout.splitlines() if line[:4] == "+++ "
    }


def test_diff_session_explains_a_bad_stage() -> None:
    result = nox("-s", "diff", "--", "01", "99")

    assert result.returncode != 0
    assert "no stage '99'" in result.stderr
