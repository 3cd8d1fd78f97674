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
from sqlmodel import Session

from task_api.config import Settings, get_settings
from task_api.database import get_session
from task_api.models import MAX_ID, User

ALGORITHM = "HS256"

# PBKDF2 from the standard library: salted and slow on purpose. Lesson 09 replaces it
# with Argon2id and upgrades these hashes as their users log in.
PBKDF2_ITERATIONS = 600_000


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)
    encode = base64.b64encode
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, hashed_password: str) -> bool:
    try:
        scheme, iterations, salt, digest = hashed_password.split("$")
        expected = base64.b64decode(digest)
        candidate = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(salt), int(iterations)
        )
    except ValueError:  # a damaged hash (bad base64 is a ValueError too)
        return False
    # Compare in constant time, so that timing does not tell how much of a guess was right.
    return scheme == "pbkdf2_sha256" and hmac.compare_digest(candidate, expected)


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
