"""What the Dockerfile and compose.yaml promise an operator, read from the files themselves.

(Building the image needs a Docker engine; these checks need none.)
"""

import re
from pathlib import Path

import yaml

CAPSTONE = Path(__file__).resolve().parent.parent


def dockerfile() -> str:
    return (CAPSTONE / "Dockerfile").read_text()


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((CAPSTONE / "compose.yaml").read_text())  # type: ignore[no-any-return]


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    users = re.findall(r"^USER (\S+)", dockerfile(), flags=re.MULTILINE)

    assert users and users[-1] not in ("root", "0")


def test_the_image_checks_its_own_health() -> None:
    [check] = re.findall(r"^HEALTHCHECK .*(?:\n .*)*", dockerfile(), flags=re.MULTILINE)

    assert "/health" in check


def test_the_image_holds_what_the_app_needs() -> None:
    copied = re.findall(r"^COPY (\S+)", dockerfile(), flags=re.MULTILINE)

    for path in copied:
        assert (CAPSTONE.parent / path).exists(), path
    assert {"capstone/task_api", "capstone/migrations", "capstone/alembic.ini", "shared"} <= set(
        copied
    )


def test_compose_migrates_once_before_the_api_starts() -> None:
    services = compose()["services"]

    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    needs = services["api"]["depends_on"]
    assert needs["migrate"]["condition"] == "service_completed_successfully"
    assert needs["redis"]["condition"] == "service_healthy"


def test_compose_runs_two_api_workers_in_production() -> None:
    api = compose()["services"]["api"]

    assert api["environment"]["WEB_CONCURRENCY"] == "2"
    assert api["environment"]["ENVIRONMENT"] == "production"
    assert api["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")  # no default key
    assert api["environment"]["REDIS_URL"].startswith("redis://")


def test_compose_runs_background_runs_in_worker_processes() -> None:
    services = compose()["services"]

    assert services["api"]["environment"]["RUNS_IN_PROCESS"] == "false"
    worker = services["worker"]
    assert worker["command"] == ["python", "-m", "task_api.runs.worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")
