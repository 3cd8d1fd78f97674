from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def stage_dirs() -> list[Path]:
    stages = sorted(p for p in (ROOT / "lessons").iterdir() if p.is_dir())
    if (ROOT / "capstone").is_dir():
        stages.append(ROOT / "capstone")
    return stages


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
