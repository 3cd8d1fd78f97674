"""Passwords, tokens and API keys: making them, and checking them."""

import hashlib
import hmac
import os
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher

from task_api.config import Settings
from task_api.models import MAX_ID

ALGORITHM = "HS256"

# Argon2id, slow on purpose: a stolen table of hashes is expensive to guess from.
password_hash = PasswordHash((Argon2Hasher(),))
# Each hash keeps a core busy for tens of milliseconds (in a worker thread: the event loop
# goes on). At most this many at once, so that a burst of logins always leaves a core for
# the event loop and every other request.
hashing_slots = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) - 1))


def hash_password(password: str) -> str:
    with hashing_slots:
        return password_hash.hash(password)


def verify_password(password: str, hashed_password: str) -> tuple[bool, str | None]:
    """Whether the password matches, and a new hash when the stored one used older settings."""
    try:
        with hashing_slots:
            return password_hash.verify_and_update(password, hashed_password)
    except UnknownHashError:
        return False, None


# Checked against when the username does not exist, so that a wrong username takes as long
# as a wrong password and the response time does not reveal who has an account.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def create_access_token(user_id: int, settings: Settings) -> str:
    now = datetime.now(UTC)
    expires = now + timedelta(minutes=settings.access_token_expire_minutes)
    claims = {"sub": str(user_id), "iat": now, "exp": expires}
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)


def read_user_id(token: str, settings: Settings) -> int | None:
    """The user id a valid token was issued for, or None for any token we did not issue."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            # Name the one algorithm we sign with: a token cannot choose "none" or another one.
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat"]},
        )
    except jwt.InvalidTokenError:
        return None
    subject = claims["sub"]
    # We sign only user ids: digits, no more than an id column holds (2**63 would be a 500).
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()):
        return None
    if len(subject) > len(str(MAX_ID)) or int(subject) > MAX_ID:
        return None
    return int(subject)


# An API key: "tm_" and 43 random characters. Its first 12 characters (the prefix) find its
# row; a SHA-256 hash of the whole key checks it. A key is 256 random bits, so a fast hash
# is enough (nobody can guess one back from its hash), and checking a key costs microseconds.
API_KEY_START = "tm_"
API_KEY_PREFIX_LENGTH = 12
# What new_api_key makes: anything else (a NUL, a space) is no key, and reaches no query.
API_KEY_PATTERN = re.compile(API_KEY_START + r"[A-Za-z0-9_-]{43}")


def new_api_key() -> str:
    return API_KEY_START + secrets.token_urlsafe(32)


def api_key_prefix(key: str) -> str:
    return key[:API_KEY_PREFIX_LENGTH]


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_matches(key: str, hashed_key: str) -> bool:
    # Compare in constant time, so that timing does not tell how much of a guess was right.
    return hmac.compare_digest(hash_api_key(key), hashed_key)


def looks_like_an_api_key(key: str) -> bool:
    return API_KEY_PATTERN.fullmatch(key) is not None
