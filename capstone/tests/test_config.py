"""The settings: defaults, sources, secrets that never print, and the production guard."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from task_api.config import DEVELOPMENT_SECRET_KEY, Settings

STRONG_KEY = "Kq3v-8ZxR_f2mLw9TnB4yHc7DpJs1Ug6"  # as secrets.token_urlsafe makes them


def test_defaults() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.database_url == "sqlite:///./tasks.db"
    assert settings.agent_model == "offline"
    assert settings.max_body_bytes == 1024 * 1024
    assert (settings.cors_origins, settings.docs_enabled, settings.redis_url) == ([], True, None)
    assert (settings.log_level, settings.log_format) == ("INFO", "json")


def test_env_file_is_read_and_environment_variables_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "APP_NAME=From the file\nCORS_ORIGINS=https://a.example, https://b.example\n"
    )
    monkeypatch.setenv("APP_NAME", "Chores")

    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]

    assert settings.app_name == "Chores"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_secrets_are_never_printed() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        secret_key=STRONG_KEY,
        openai_api_key="sk-secret",
        redis_url="redis://:hunter2@redis:6379/0",
    )

    for text in (repr(settings), str(settings.model_dump())):
        assert "hunter2" not in text and "sk-secret" not in text and STRONG_KEY not in text


@pytest.mark.parametrize(
    "secret_key",
    [DEVELOPMENT_SECRET_KEY, "short", "k" * 31, "k" * 64, " " * 64, "abcabc" * 8 + " " * 16],
)
def test_production_refuses_a_weak_secret_key(secret_key: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY") as refused:
        Settings(_env_file=None, environment="production", secret_key=secret_key)  # type: ignore[call-arg]

    assert secret_key not in str(refused.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"max_body_bytes": 0},
        {"offline_model_delay": -1},
        {"log_format": "xml"},
        {"agent_model": "gpt-4.1-mini"},  # no key, no server
    ],
)
def test_settings_that_cannot_work_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **changes)  # type: ignore[arg-type]


def start_in_production(secret_key: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Build the app in a new Python process, as a server would, with ENVIRONMENT=production.

    It starts in `folder`, an empty one, so that it reads no .env: only these variables.
    """
    capstone = Path(__file__).parent.parent
    return subprocess.run(
        [sys.executable, "-c", "from task_api.main import app"],
        env={"ENVIRONMENT": "production", "SECRET_KEY": secret_key, "PYTHONPATH": str(capstone)},
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_app_refuses_to_start_in_production_with_the_default_key(tmp_path: Path) -> None:
    result = start_in_production(DEVELOPMENT_SECRET_KEY, tmp_path)

    assert result.returncode != 0
    assert "ENVIRONMENT=production needs a SECRET_KEY" in result.stderr


def test_the_app_starts_in_production_with_a_strong_key(tmp_path: Path) -> None:
    assert start_in_production(STRONG_KEY, tmp_path).returncode == 0


def test_importing_the_app_module_reads_no_settings(tmp_path: Path) -> None:
    # Tests import create_app: a .env that would not start the app must not stop them.
    (tmp_path / ".env").write_text("ENVIRONMENT=production\nSECRET_KEY=short\n")
    capstone = Path(__file__).parent.parent
    result = subprocess.run(
        [sys.executable, "-c", "import task_api.main"],
        env={"PYTHONPATH": str(capstone)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr


SETTINGS = {name.upper() for name in Settings.model_fields}


def test_env_example_names_every_setting(capstone: Path) -> None:
    lines = (capstone / ".env.example").read_text().splitlines()
    # "NAME=value", or "# NAME=value" for one left unset
    named = {re.match(r"#? ?([A-Z_]+)=", line) for line in lines}

    assert {match.group(1) for match in named if match} == SETTINGS


def test_readme_names_every_setting(capstone: Path) -> None:
    readme = (capstone / "README.md").read_text()
    table = readme.split("### Settings", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]

    assert {name for row in rows for name in re.findall(r"`([A-Z_]+)`", row.split("|")[1])} == (
        SETTINGS
    )
