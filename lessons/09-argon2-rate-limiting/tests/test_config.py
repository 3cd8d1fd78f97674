import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from task_api.config import DEVELOPMENT_SECRET_KEY, Settings

STRONG_KEY = "k" * 32


def test_defaults() -> None:
    settings = Settings(_env_file=None)

    assert settings.app_name == "Task API"
    assert settings.environment == "development"
    assert settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY


def test_env_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"APP_NAME=From the file\nSECRET_KEY={STRONG_KEY}\n")

    settings = Settings(_env_file=env_file)

    assert settings.app_name == "From the file"
    assert settings.secret_key.get_secret_value() == STRONG_KEY


def test_environment_variables_win_over_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("APP_NAME=From the file\n")
    monkeypatch.setenv("APP_NAME", "Chores")

    assert Settings(_env_file=env_file).app_name == "Chores"


def test_secret_key_is_never_printed() -> None:
    settings = Settings(_env_file=None, secret_key=STRONG_KEY)

    assert STRONG_KEY not in repr(settings)
    assert STRONG_KEY not in str(settings.model_dump())


@pytest.mark.parametrize("secret_key", [DEVELOPMENT_SECRET_KEY, "short", "k" * 31])
def test_production_refuses_a_weak_secret_key(secret_key: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, environment="production", secret_key=secret_key)


def test_a_refused_secret_key_is_not_shown_in_the_error() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, environment="production", secret_key="my-weak-secret-123")

    assert "my-weak-secret-123" not in str(refused.value)


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, environment="staging")


def start_app_in_production(secret_key: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Import the app in a new Python process, as a server would, with ENVIRONMENT=production.

    It starts in `folder`, an empty one, so that it reads no .env: only these variables.
    """
    stage = Path(__file__).parent.parent
    return subprocess.run(
        [sys.executable, "-c", "import task_api.main"],
        env={"ENVIRONMENT": "production", "SECRET_KEY": secret_key, "PYTHONPATH": str(stage)},
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def test_app_refuses_to_start_in_production_with_the_default_key(tmp_path: Path) -> None:
    result = start_app_in_production(DEVELOPMENT_SECRET_KEY, tmp_path)

    assert result.returncode != 0
    assert "ENVIRONMENT=production needs a SECRET_KEY" in result.stderr


def test_app_starts_in_production_with_a_strong_key(tmp_path: Path) -> None:
    result = start_app_in_production(STRONG_KEY, tmp_path)

    assert result.returncode == 0, result.stderr
