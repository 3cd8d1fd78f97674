"""Webhooks: a run's final status, POSTed to the URL its owner gave, signed, retried; and,
the same way, each time the run waits for its owner's approval (`awaiting_approval`).

A run whose status is final and whose webhook is not done with is due (the run queue's
`claim_delivery`): whoever ended the run (its worker, a recovery, a shutdown, a cancel),
some worker delivers it, and, if that worker stops, another. A receiver may get a message
twice (a worker stopped between its POST and noting it): the `webhook-id` tells it so.

The body is signed as Standard Webhooks (standardwebhooks.com) say: `webhook-id`,
`webhook-timestamp` and `webhook-signature` (HMAC-SHA256 of id, timestamp and body under
WEBHOOK_SECRET), so that a receiver can tell it came from this service, and refuse an old
one replayed. A receiver answers within TIMEOUT_SECONDS, and its body is never read: it
can neither hold a worker nor fill its memory. A URL is only taken
if its host resolves to public addresses, checked when the run is made and again at each
delivery, and the request goes to the very address that was checked; redirects are not
followed. Without that, a user could make this server call addresses only it can reach
(its cloud's metadata service at 169.254.169.254, a database on localhost): SSRF.
"""

import asyncio
import ipaddress
import json
import logging
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from fastapi.concurrency import run_in_threadpool
from standardwebhooks import Webhook

from task_api.config import Settings
from task_api.runs.models import AgentRun, RunStatus
from task_api.runs.queue import RunQueue

logger = logging.getLogger(__name__)

ATTEMPTS = 5  # then the run keeps its record of failed attempts
FIRST_BACKOFF_SECONDS = 1.0  # doubled after each failed attempt
TIMEOUT_SECONDS = 5.0  # to connect, to send, to answer
DELIVERY_SECONDS = 60.0  # all the attempts of one delivery, backoff included
DELIVERY_LEASE_SECONDS = DELIVERY_SECONDS + 30  # then another worker may take it up


class UnsafeWebhook(ValueError):
    """A webhook URL this service will not call."""


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052 and 8215).
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def carried_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to, if it carries one: the connection may end
    there (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in prefix for prefix in NAT64) or int(address) >> 32 == 0:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """Global unicast, and so is any IPv4 address it carries: no private, loopback,
    link-local, reserved or multicast address, however it is written."""
    return all(
        each.is_global and not each.is_multicast
        for each in (address, carried_ipv4(address))
        if each is not None
    )


def resolve_webhook(url: str, allow_private: bool) -> tuple[str, str]:
    """(the host, the address to connect to) for a webhook URL this service may call.

    Blocking (DNS): call it in a thread.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeWebhook("A webhook URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise UnsafeWebhook("A webhook URL must not hold credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError):
        raise UnsafeWebhook(f"The webhook host {parts.hostname!r} does not resolve") from None
    addresses = [ipaddress.ip_address(entry[4][0]) for entry in found]
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise UnsafeWebhook(f"The webhook host resolves to {address}, which is not public")
    return parts.hostname, str(addresses[0])


def signed(body: bytes, secret: str, message_id: str) -> dict[str, str]:
    """The headers of a delivery, signed as Standard Webhooks say. The id stays the same
    across retries, so that a receiver can tell a retry from a new message."""
    now = datetime.now(UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret.encode()).sign(message_id, now, body),
    }


async def deliver_final_status(queue: RunQueue, settings: Settings, run: AgentRun) -> None:
    """POST a finished run's status to its webhook_url, each try recorded, ATTEMPTS in all
    (a worker that takes up a delivery another began goes on from where it stopped), within
    DELIVERY_SECONDS. Then the webhook is done with: delivered, or given up on."""
    assert run.id is not None and run.webhook_url is not None
    if settings.webhook_secret is None:
        logger.warning("webhook of run %s not delivered: WEBHOOK_SECRET is not set", run.id)
        await run_in_threadpool(queue.delivered, run.id, run.status)
        return
    body = json.dumps(
        {"id": run.id, "status": run.status, "detail": run.detail, "result": run.result}
    ).encode()
    secret, message_id = settings.webhook_secret.get_secret_value(), message_id_of(run)
    made = await run_in_threadpool(queue.webhook_attempts_of, message_id)
    backoff = FIRST_BACKOFF_SECONDS
    try:
        async with asyncio.timeout(DELIVERY_SECONDS):
            for attempt in range(made + 1, ATTEMPTS + 1):
                headers = signed(body, secret, message_id)  # a fresh timestamp each time
                status_code, error = await post(run.webhook_url, body, headers, settings)
                await run_in_threadpool(
                    queue.record_webhook_attempt, run.id, message_id, status_code, error
                )
                if status_code is not None and 200 <= status_code < 300:
                    await run_in_threadpool(queue.delivered, run.id, run.status)
                    return
                if attempt < ATTEMPTS:
                    await asyncio.sleep(backoff)
                    backoff *= 2
    except TimeoutError:
        pass
    logger.warning("webhook of run %s not delivered", run.id)
    await run_in_threadpool(queue.delivered, run.id, run.status)


def message_id_of(run: AgentRun) -> str:
    """The webhook-id of the run's message: one for its final status, one for each wait for an
    approval (a run waits at most once per attempt)."""
    if run.status == RunStatus.AWAITING_APPROVAL:
        return f"run_{run.id}_approval_{run.attempt}"
    return f"run_{run.id}"


async def post(
    url: str, body: bytes, headers: dict[str, str], settings: Settings
) -> tuple[int | None, str | None]:
    """One delivery: (the receiver's status, or None and why there was none)."""
    try:
        host, address = await run_in_threadpool(
            resolve_webhook, url, settings.webhook_allow_private
        )
    except UnsafeWebhook as refused:
        return None, str(refused)[:200]
    parts = urlsplit(url)
    # To the address just checked (a second DNS answer could differ: DNS rebinding), with the
    # host name in the Host header and, for https, in TLS (SNI and the certificate check).
    netloc = f"[{address}]" if ":" in address else address
    pinned = parts._replace(netloc=f"{netloc}:{parts.port}" if parts.port else netloc).geturl()
    try:
        async with (
            httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream(
                "POST",
                pinned,
                content=body,
                headers={**headers, "Host": parts.netloc.rsplit("@", 1)[-1]},
                extensions={"sni_hostname": host},
            ) as response,
        ):
            return response.status_code, None  # the status is all we need: no body is read
    except httpx.HTTPError as error:
        return None, type(error).__name__
