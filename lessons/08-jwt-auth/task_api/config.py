"""The app's settings, read from environment variables and from a `.env` file."""

import logging
from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

# Good enough on your laptop, never in production: the check below refuses it there.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-deploy"
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    """Each field is read from the variable of the same name in upper case (APP_NAME, ...)."""

    # hide_input_in_errors: a refused value (a weak SECRET_KEY) is not echoed in the error.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    app_name: str = "Task API"
    environment: Literal["development", "production"] = "development"
    # A SQLite file next to the app; PostgreSQL (Neon included) with postgresql://...
    database_url: str = "sqlite:///./tasks.db"
    # SecretStr prints as '**********', so the key cannot leak into a log or a traceback.
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET_KEY)
    # How long a login lasts: the client logs in again after that.
    access_token_expire_minutes: int = Field(default=30, gt=0)

    @model_validator(mode="after")
    def refuse_unsafe_production_values(self) -> Self:
        if self.environment == "production":
            key = self.secret_key.get_secret_value()
            if key == DEVELOPMENT_SECRET_KEY or len(key) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(
                    f"ENVIRONMENT=production needs a SECRET_KEY of at least "
                    f"{MIN_SECRET_KEY_LENGTH} random characters; make one with: "
                    'python -c "import secrets; print(secrets.token_urlsafe(32))"'
                )
        return self


@lru_cache
def get_settings() -> Settings:
    """The settings, read once; a dependency, so tests can swap them."""
    settings = Settings()
    if settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY:
        logger.warning("SECRET_KEY is the development default: set your own before deploying")
    return settings
