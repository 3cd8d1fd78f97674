"""Rate limits: registrations and logins per client address, failed logins per username,
calls to the API per user, and what one user may hold open at once.

The counters live in this process's memory, or, with REDIS_URL, in Redis, where every
worker process counts the same requests. The `limits` package does the counting (lesson 09
used it through slowapi); the app keeps one `RateLimits` from start-up to shutdown.
"""

import logging
import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from limits import parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError

from task_api.config import Settings
from task_api.errors import TooManyRequests

logger = logging.getLogger(__name__)


class RateLimits:
    """One app's counters, and the checks the routes make against them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage: Storage
        if settings.redis_url is None:
            self.storage = MemoryStorage()
        else:
            url = settings.redis_url.get_secret_value()
            self.storage = RedisStorage(f"async+{url}", implementation="redispy")
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.held_open: Counter[int] = Counter()  # user id -> streams, waits, sockets open

    @contextmanager
    def holding_open(self, user_id: int) -> Iterator[None]:
        """One more connection the user keeps open (an event stream, a wait for a run's
        result, a WebSocket), for as long as the block runs: 429 past MAX_OPEN_PER_USER, so
        that one user cannot take every connection a process can serve. Counted per process.
        """
        limit = self.settings.max_open_per_user
        if self.held_open[user_id] >= limit:
            raise TooManyRequests(f"{limit} open streams, waits and sockets", retry_after=5)
        self.held_open[user_id] += 1
        try:
            yield
        finally:
            self.held_open[user_id] -= 1
            if not self.held_open[user_id]:
                del self.held_open[user_id]

    async def hit(self, limits: str, *keys: str) -> None:
        """Count one request against each of `limits` ("5/minute;50/hour"); 429 when over.

        If Redis does not answer, the request is let through and the failure logged: the
        limits protect the service, and a Redis outage should not take the whole API down.
        """
        try:
            for limit in parse_many(limits):
                if not await self.limiter.hit(limit, *keys):
                    reset_at, _remaining = await self.limiter.get_window_stats(limit, *keys)
                    raise TooManyRequests(str(limit), max(1, math.ceil(reset_at - time.time())))
        except RedisError as error:
            logger.warning("rate limits not counted, Redis failed: %s", type(error).__name__)

    async def hit_user(self, user_id: int) -> None:
        """Count one call to the API against the user's limit (RATE_LIMIT_API), from
        whatever address and over whichever transport: a request, a WebSocket turn."""
        await self.hit(self.settings.rate_limit_api, f"user:{user_id}", "api")

    async def remember_address(self, username: str, address: str) -> None:
        """The user logged in from this address: it is theirs, for KNOWN_ADDRESS_SECONDS."""
        try:
            await self.storage.incr(known_address_key(username, address), KNOWN_ADDRESS_SECONDS)
        except RedisError as error:
            logger.warning("address not remembered, Redis failed: %s", type(error).__name__)

    async def is_known_address(self, username: str, address: str) -> bool:
        try:
            return await self.storage.get(known_address_key(username, address)) > 0
        except RedisError as error:
            logger.warning("address not looked up, Redis failed: %s", type(error).__name__)
            return False

    async def refuse_if_spent(self, limits: str, *keys: str) -> None:
        """429 when any of `limits` is already spent, without counting this request."""
        try:
            for limit in parse_many(limits):
                if not await self.limiter.test(limit, *keys):
                    reset_at, _remaining = await self.limiter.get_window_stats(limit, *keys)
                    raise TooManyRequests(str(limit), max(1, math.ceil(reset_at - time.time())))
        except RedisError as error:
            logger.warning("rate limits not checked, Redis failed: %s", type(error).__name__)


# A user who logged in from an address is known there this long: a stranger's guesses, which
# spend the username's limit of failed logins, do not lock them out from it.
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600


def failed_login_keys(username: str) -> tuple[str, str]:
    # No username is longer than 50 characters: a longer one shares its first 50's counter.
    return f"username:{username[:50]}", "failed-logins"


def known_address_key(username: str, address: str) -> str:
    return f"known-address/{username[:50]}/{address}"
