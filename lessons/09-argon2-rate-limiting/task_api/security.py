"""Passwords, tokens, and who is calling."""

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException
from fastapi.security import OAuth2PasswordBearer
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.base import ensure_bytes, ensure_str
from sqlmodel import Session

from task_api.config import Settings, get_settings
from task_api.database import get_session
from task_api.models import MAX_ID, User

ALGORITHM = "HS256"


class Pbkdf2Hasher:
    """Reads the PBKDF2 hashes of lesson 08, so that those users can still log in.

    It never makes new ones: PasswordHash below hashes with its first hasher, Argon2id.
    """

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        return ensure_str(hash).startswith("pbkdf2_sha256$")

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        raise NotImplementedError("new passwords are hashed with Argon2id")

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        try:
            _scheme, iterations, salt, digest = ensure_str(hash).split("$")
            expected = base64.b64decode(digest)
            candidate = hashlib.pbkdf2_hmac(
                "sha256", ensure_bytes(password), base64.b64decode(salt), int(iterations)
            )
        except ValueError:  # a damaged hash (bad base64 is a ValueError too)
            return False
        # Compare in constant time, so that timing does not tell how much of a guess was right.
        return hmac.compare_digest(candidate, expected)

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        return True


# Argon2id for every new hash (the first hasher); older PBKDF2 hashes are still understood.
password_hash = PasswordHash((Argon2Hasher(), Pbkdf2Hasher()))


def hash_password(password: str) -> str:
    return password_hash.hash(password)


def verify_password(password: str, hashed_password: str) -> tuple[bool, str | None]:
    """Whether the password matches, and a new Argon2id hash when the stored one is older."""
    try:
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


# Reads "Authorization: Bearer <token>" and tells OpenAPI where to log in ("Authorize" in /docs).
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def unauthorized(detail: str) -> HTTPException:
    # RFC 6750: a 401 says which scheme to use.
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def get_current_user(
    token: Annotated[str | None, Depends(oauth2_scheme)],
    session: Annotated[Session, Depends(get_session)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> User:
    """The user the bearer token was issued to; 401 for anything else."""
    if token is None:
        raise unauthorized("Not authenticated")
    user_id = read_user_id(token, settings)
    user = session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise unauthorized("Could not validate credentials")
    return user
