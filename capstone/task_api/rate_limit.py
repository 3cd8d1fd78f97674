"""Rate limits: registrations and logins per client address, failed logins per username,
calls to the API per user, and what one user may hold open at once.

The counters live in this process's memory, or, with REDIS_URL, in Redis, where every
worker process counts the same requests. The `limits` package does the counting (lesson 09
used it through slowapi); the app keeps one `RateLimits` from start-up to shutdown.

If Redis fails or does not answer within REDIS_TIMEOUT_SECONDS, requests go through
uncounted, and Redis is left alone for REDIS_RETRY_SECONDS: a Redis that is down or stalled
costs a request at most that timeout, never an error, and is used again once it is back.
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
from task_api.events import REDIS_RETRY_SECONDS, REDIS_TIMEOUT_SECONDS

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
            self.storage = RedisStorage(
                f"async+{url}",
                implementation="redispy",
                key_prefix=f"{settings.redis_prefix}:limits",
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.held_open: Counter[int] = Counter()  # user id -> streams, waits, sockets open
        self.redis_away_until = 0.0  # time.monotonic(): Redis failed, leave it alone till then

    def redis_away(self) -> bool:
        return time.monotonic() < self.redis_away_until

    def redis_failed(self, error: RedisError, what: str) -> None:
        self.redis_away_until = time.monotonic() + REDIS_RETRY_SECONDS
        logger.warning("%s, Redis failed: %s", what, type(error).__name__)

    async def storage_answers(self) -> bool:
        """Whether the counters can be reached (Redis answers, if they are there): /ready."""
        return not self.redis_away() and await self.storage.check()

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
        if self.redis_away():
            return
        try:
            for limit in parse_many(limits):
                if not await self.limiter.hit(limit, *keys):
                    reset_at, _remaining = await self.limiter.get_window_stats(limit, *keys)
                    raise TooManyRequests(str(limit), max(1, math.ceil(reset_at - time.time())))
        except RedisError as error:
            self.redis_failed(error, "rate limits not counted")

    async def hit_user(self, user_id: int) -> None:
        """Count one call to the API against the user's limit (RATE_LIMIT_API), from
        whatever address and over whichever transport: a request, a WebSocket turn."""
        await self.hit(self.settings.rate_limit_api, f"user:{user_id}", "api")

    async def remember_address(self, username: str, address: str) -> None:
        """The user logged in from this address: it is theirs, for KNOWN_ADDRESS_SECONDS."""
        if self.redis_away():
            return
        try:
            await self.storage.incr(known_address_key(username, address), KNOWN_ADDRESS_SECONDS)
        except RedisError as error:
            self.redis_failed(error, "address not remembered")

    async def is_known_address(self, username: str, address: str) -> bool:
        if self.redis_away():
            return False
        try:
            return await self.storage.get(known_address_key(username, address)) > 0
        except RedisError as error:
            self.redis_failed(error, "address not looked up")
            return False

    async def refuse_if_spent(self, limits: str, *keys: str) -> None:
        """429 when any of `limits` is already spent, without counting this request."""
        if self.redis_away():
            return
        try:
            for limit in parse_many(limits):
                if not await self.limiter.test(limit, *keys):
                    reset_at, _remaining = await self.limiter.get_window_stats(limit, *keys)
                    raise TooManyRequests(str(limit), max(1, math.ceil(reset_at - time.time())))
        except RedisError as error:
            self.redis_failed(error, "rate limits not checked")


# A user who logged in from an address is known there this long: a stranger's guesses, which
# spend the username's limit of failed logins, do not lock them out from it.
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600


def failed_login_keys(username: str) -> tuple[str, str]:
    # No username is longer than 50 characters: a longer one shares its first 50's counter.
    return f"username:{username[:50]}", "failed-logins"


def known_address_key(username: str, address: str) -> str:
    return f"known-address/{username[:50]}/{address}"
