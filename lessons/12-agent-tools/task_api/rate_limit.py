"""Rate limits: how often a client may register and log in, and a user may call the API."""

import math
import time
from typing import Any

from fastapi import HTTPException
from limits import RateLimitItem, parse_many
from slowapi import Limiter
from slowapi.util import get_remote_address

from task_api.config import Settings, get_settings
from task_api.deps import CurrentUser, SettingsDep
from task_api.models import ErrorMessage

# Counters kept in this process's memory: right for one process. The capstone keeps them
# in Redis, so that every worker process counts the same requests.
limiter = Limiter(key_func=get_remote_address, storage_uri="memory://")

TOO_MANY_REQUESTS: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorMessage,
        "description": "Too many requests; the Retry-After header says how many seconds to wait",
    }
}


def login_limit() -> str:
    """The login limit, read from the settings when a request comes in."""
    return get_settings().rate_limit_login


def register_limit() -> str:
    """The registration limit: every new account costs an Argon2 hash and a row."""
    return get_settings().rate_limit_register


def too_many_requests(limit: RateLimitItem, *keys: str) -> HTTPException:
    """A 429 that says which limit was hit and when the client may try again."""
    reset_at, _remaining = limiter.limiter.get_window_stats(limit, *keys)
    retry_after = max(1, math.ceil(reset_at - time.time()))
    return HTTPException(
        status_code=429,
        detail=f"Too many requests: the limit is {limit}",
        headers={"Retry-After": str(retry_after)},
    )


def failed_login_keys(username: str) -> tuple[str, str]:
    # No username is longer than 50 characters: a longer one shares its first 50's counter.
    return f"username:{username[:50]}", "failed-logins"


def refuse_a_guessed_username(username: str, settings: Settings) -> None:
    """429 once a username has had its share of failed logins, from whatever addresses."""
    keys = failed_login_keys(username)
    for limit in parse_many(settings.rate_limit_login):
        if not limiter.limiter.test(limit, *keys):
            raise too_many_requests(limit, *keys)


def count_a_failed_login(username: str, settings: Settings) -> None:
    for limit in parse_many(settings.rate_limit_login):
        limiter.limiter.hit(limit, *failed_login_keys(username))


def limit_api_calls(user: CurrentUser, settings: SettingsDep) -> None:
    """Count this call against the caller's limit: per user, from whatever address."""
    keys = (f"user:{user.id}", "api")
    for limit in parse_many(settings.rate_limit_api):
        if not limiter.limiter.hit(limit, *keys):
            raise too_many_requests(limit, *keys)
