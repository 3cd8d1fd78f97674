"""Every stage has the same shape, so a student always knows where to look."""

import ast
import itertools
import re
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, stage_dirs

STAGES = stage_dirs()
LESSONS = [stage for stage in STAGES if stage.parent.name == "lessons"]
# The sections of a lesson README, in this order.
README_SECTIONS = [
    "What you will build",
    "What changed",
    "Concepts",
    "Run it",
    "Try it",
    "Test it",
    "Exercises",
    "Where next",
]


def stage_id(stage: Path) -> str:
    return stage.name


def python_files(stage: Path) -> list[Path]:
    return [
        path
        for path in stage.rglob("*.py")
        if not {".venv", ".nox", "build", "__pycache__"} & set(path.relative_to(stage).parts)
    ]


def test_there_are_stages() -> None:
    assert len(LESSONS) >= 6


def test_stage_numbers_are_contiguous() -> None:
    numbers = [int(stage.name[:2]) for stage in LESSONS]

    assert numbers == list(range(1, len(LESSONS) + 1))
    assert all(re.fullmatch(r"\d\d-[a-z0-9]+(-[a-z0-9]+)*", stage.name) for stage in LESSONS)


@pytest.mark.parametrize("stage", STAGES, ids=stage_id)
def test_stage_has_the_standard_layout(stage: Path) -> None:
    for path in ["README.md", "pyproject.toml", "task_api/__init__.py", "task_api/main.py"]:
        assert (stage / path).is_file(), f"{stage.name} has no {path}"
    assert list((stage / "tests").glob("test_*.py")), f"{stage.name} has no tests"


@pytest.mark.parametrize("stage", STAGES, ids=stage_id)
def test_stage_pyproject_declares_its_app_and_tests(stage: Path) -> None:
    project = tomllib.loads((stage / "pyproject.toml").read_text())

    assert project["project"]["requires-python"] == ">=3.11"
    assert any(dep.startswith("fastapi") for dep in project["project"]["dependencies"])
    assert any(
        dep.startswith("pytest") for dep in project["project"]["optional-dependencies"]["test"]
    )
    assert project["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]


@pytest.mark.parametrize("stage", LESSONS, ids=stage_id)
def test_readme_has_the_lesson_sections_in_order(stage: Path) -> None:
    headings = re.findall(r"^## (.+)$", (stage / "README.md").read_text(), flags=re.MULTILINE)
    found = [
        next((i for i, h in enumerate(headings) if h.startswith(section)), None)
        for section in README_SECTIONS
    ]

    assert None not in found, f"{stage.name}: missing {README_SECTIONS[found.index(None)]!r}"
    assert found == sorted(found), f"{stage.name}: sections out of order: {headings}"


@pytest.mark.parametrize("stage", STAGES, ids=stage_id)
def test_stage_imports_no_other_stage(stage: Path) -> None:
    other_names = {other.name for other in STAGES if other != stage} | {"lessons", "capstone"}
    for path in python_files(stage):
        source = path.read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not any(m.split(".")[0] in other_names for m in modules), path
        assert "sys.path" not in source, f"{path} edits sys.path"
        assert not any(name in source for name in other_names - {"lessons", "capstone"}), path


@pytest.mark.parametrize(
    ("before", "after"), list(itertools.pairwise(STAGES)), ids=lambda s: s.name[:2]
)
def test_every_stage_adds_something(before: Path, after: Path) -> None:
    def snapshot(stage: Path) -> dict[str, str]:
        return {
            path.relative_to(stage).as_posix(): path.read_text()
            for path in [*python_files(stage), stage / "README.md"]
        }

    assert snapshot(before) != snapshot(after)


def test_readme_lesson_map_links_every_stage() -> None:
    readme = (ROOT / "README.md").read_text()

    for stage in STAGES:
        link = stage.relative_to(ROOT).as_posix()
        assert f"]({link}/)" in readme or f"]({link})" in readme, f"README does not link {link}"
