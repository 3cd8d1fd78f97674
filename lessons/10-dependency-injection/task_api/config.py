"""The app's settings, read from environment variables and from a `.env` file."""

import logging
from functools import lru_cache
from typing import Literal, Self

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
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
    # "N/second", "N/minute", "N/hour" or "N/day" (several: "5/minute;50/hour").
    # Per client address on POST /auth/token, and per username on failed logins.
    rate_limit_login: str = "5/minute"
    rate_limit_register: str = "10/hour"  # per client address, on POST /auth/register
    rate_limit_api: str = "120/minute"  # per user, on every /tasks route

    @field_validator("rate_limit_login", "rate_limit_register", "rate_limit_api")
    @classmethod
    def must_be_a_rate_limit(cls, value: str) -> str:
        parse_many(value)  # raises ValueError for anything that is not a rate limit
        return value

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
