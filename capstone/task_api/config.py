"""The service's settings, read from environment variables and from a `.env` file."""

import logging
from typing import Annotated, Literal, Self

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger(__name__)

# Good enough on your laptop, never in production: the check below refuses it there.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-deploy"
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_VARIETY = 10  # different characters: "aaaa...a" is long, and guessed at once


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
    rate_limit_api: str = "120/minute"  # per user, on every other /api/v1 route
    # Event streams, result waits and WebSockets one user may hold open at once, per process.
    max_open_per_user: int = Field(default=10, ge=1)

    # "offline": the built-in model, no key, no network. Anything else is an OpenAI model
    # name (gpt-4.1-mini, ...), or a model of the server at OPENAI_BASE_URL (Ollama, vLLM).
    agent_model: str = "offline"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    # The provider's API: OpenAI's Responses API, or Chat Completions (what Ollama, vLLM and
    # most OpenAI-compatible servers speak). Unset: Responses for OpenAI itself, Chat
    # Completions at an OPENAI_BASE_URL.
    openai_api: Literal["responses", "chat_completions"] | None = None
    agent_timeout_seconds: float = Field(default=60, gt=0)
    # Send traces of agent runs to OpenAI's dashboard (needs OPENAI_API_KEY).
    agent_tracing: bool = False
    # Seconds the offline model waits before each streamed piece: for demos and benchmarks.
    offline_model_delay: float = Field(default=0, ge=0, le=10)

    # Agent turns (chats, WebSocket turns, approvals' turns) one process runs at once; the
    # next AGENT_QUEUE_LENGTH wait up to AGENT_QUEUE_SECONDS, in order; past that, 503.
    agent_concurrency: int = Field(default=100, ge=1, le=10_000)
    agent_queue_length: int = Field(default=1000, ge=0, le=100_000)
    agent_queue_seconds: float = Field(default=30, ge=0, le=600)
    # Tools that wait for their owner's approval before they run (comma-separated names).
    approval_required_tools: Annotated[frozenset[str], NoDecode] = frozenset({"delete_task"})
    # Undecided after this long, an approval counts as rejected and the turn goes on.
    approval_ttl_seconds: float = Field(default=3600, ge=1, le=30 * 24 * 3600)

    # Larger request bodies are refused with 413 before they are read to the end.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # Origins (https://app.example.com) whose pages may call the API; none: same origin only.
    cors_origins: Annotated[list[str], NoDecode] = []
    # The host names clients reach the service by (api.example.com); other Host headers get
    # 400. "*" trusts any: set yours in production.
    allowed_hosts: Annotated[list[str], NoDecode] = ["*"]
    # Production may turn /docs, /redoc and /openapi.json off.
    docs_enabled: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # json: one JSON object per line, for a log collector; text: for your terminal.
    log_format: Literal["json", "text"] = "json"
    # Set: rate limits and live events are shared by every process through Redis. Unset:
    # limits are counted per process, and live events pass through PostgreSQL (or, on
    # SQLite, within the one process).
    redis_url: SecretStr | None = None
    # Every key and channel of this service in Redis begins with this: services (or test
    # runs) that share one Redis keep apart.
    redis_prefix: str = Field(default="task_api", pattern=r"^[A-Za-z0-9_.-]{1,50}$")

    # Background runs: true, the API process also executes them (the embedded set-up);
    # false, only `python -m task_api.runs.worker` processes do.
    runs_in_process: bool = True
    worker_concurrency: int = Field(default=4, ge=1, le=64)  # runs at once, per process
    max_queued_runs_per_user: int = Field(default=20, ge=1)  # waiting at once; 429 past it
    # A worker renews its lease on a run every third of this; a run whose lease runs out
    # (its worker crashed) is taken up again, or failed (see the README).
    run_lease_seconds: float = Field(default=30, ge=3, le=3600)
    run_retention_days: int = Field(default=30, ge=1)  # finished runs older than this go
    # Signs webhook bodies (HMAC-SHA256); unset, runs with a webhook_url are refused.
    webhook_secret: SecretStr | None = None
    # Development only: let webhooks reach private, loopback and link-local addresses.
    webhook_allow_private: bool = False

    @field_validator("cors_origins", "allowed_hosts", "approval_required_tools", mode="before")
    @classmethod
    def comma_separated(cls, value: object) -> object:
        # CORS_ORIGINS=https://a.example,https://b.example; the others the same way
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("rate_limit_login", "rate_limit_register", "rate_limit_api")
    @classmethod
    def must_be_a_rate_limit(cls, value: str) -> str:
        parse_many(value)  # raises ValueError for anything that is not a rate limit
        return value

    @model_validator(mode="after")
    def refuse_unsafe_production_values(self) -> Self:
        if self.environment == "production":
            key = self.secret_key.get_secret_value()
            variety = len(set(key) - set(" \t\n"))
            if (
                key == DEVELOPMENT_SECRET_KEY
                or len(key) < MIN_SECRET_KEY_LENGTH
                or variety < MIN_SECRET_KEY_VARIETY
            ):
                raise ValueError(
                    f"ENVIRONMENT=production needs a SECRET_KEY of at least "
                    f"{MIN_SECRET_KEY_LENGTH} random characters; make one with: "
                    'python -c "import secrets; print(secrets.token_urlsafe(32))"'
                )
        return self

    @model_validator(mode="after")
    def agent_model_needs_a_provider(self) -> Self:
        if self.agent_model != "offline" and not (self.openai_api_key or self.openai_base_url):
            raise ValueError(
                f"AGENT_MODEL={self.agent_model} needs OPENAI_API_KEY (OpenAI), or "
                "OPENAI_BASE_URL (an OpenAI-compatible server); AGENT_MODEL=offline needs neither"
            )
        return self


def read_settings() -> Settings:
    """The settings from the environment and .env, with a warning for a development key."""
    settings = Settings()
    if settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY:
        logger.warning("SECRET_KEY is the development default: set your own before deploying")
    return settings
