from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from task_api.deps import (
    CurrentUser,
    RateLimitsDep,
    SessionDep,
    SettingsDep,
    client_address,
    limit_logins,
    limit_registrations,
    needs,
)
from task_api.errors import (
    MissingScope,
    NotAuthenticated,
    TooManyRequests,
    UsernameTaken,
    responses,
)
from task_api.models import Scope, Token, User, UserCreate, UserPublic
from task_api.rate_limit import failed_login_keys
from task_api.security import DUMMY_HASH, create_access_token, hash_password, verify_password

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserPublic,
    dependencies=[Depends(limit_registrations)],
    responses=responses(UsernameTaken, TooManyRequests, reads_body=True),
)
def register(data: UserCreate, session: SessionDep) -> User:
    """Create an account. The password is stored only as a hash.

    Limited per client address (RATE_LIMIT_REGISTER).
    """
    if session.exec(select(User).where(User.username == data.username)).first():
        raise UsernameTaken(data.username)
    user = User(username=data.username, hashed_password=hash_password(data.password))
    session.add(user)
    try:
        session.commit()
    except IntegrityError:  # someone registered the same name a moment ago
        session.rollback()
        raise UsernameTaken(data.username) from None
    session.refresh(user)
    return user


@router.post(
    "/auth/token",
    dependencies=[Depends(limit_logins)],
    responses=responses(NotAuthenticated, TooManyRequests, reads_body=True),
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
) -> Token:
    """Log in with the OAuth2 password flow: a form with `username` and `password`.

    Limited per client address (RATE_LIMIT_LOGIN), to slow down password guessing; failed
    logins are limited per username too, so that many addresses cannot share the guessing,
    except from an address the user has logged in from before: a stranger's guesses do not
    lock the real user out.
    """
    keys, address = failed_login_keys(form.username), client_address(request)
    if not await limits.is_known_address(form.username, address):
        await limits.refuse_if_spent(settings.rate_limit_login, *keys)
    # Argon2 takes a CPU core for tens of milliseconds: off the event loop, in a thread.
    user = await run_in_threadpool(check_password, session, form.username, form.password)
    if user is None:
        await limits.hit(settings.rate_limit_login, *keys)
        raise NotAuthenticated("Incorrect username or password")
    assert user.id is not None
    await limits.remember_address(form.username, address)
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 5.1: no cache keeps a token
    return Token(
        access_token=create_access_token(user.id, settings),
        expires_in=settings.access_token_expire_minutes * 60,
    )


def check_password(session: Session, username: str, password: str) -> User | None:
    """The user with this username and password; None for a wrong one or an unknown user."""
    query = select(User).where(User.username == username)
    # No username holds a NUL character, and PostgreSQL would refuse even to compare one.
    user = session.exec(query).first() if "\x00" not in username else None
    # No such user: check against a dummy hash anyway, so that the answer takes as long.
    valid, new_hash = verify_password(password, user.hashed_password if user else DUMMY_HASH)
    if user is None or not valid:
        return None
    if new_hash is not None:  # a hash made with older settings: store a new one
        user.hashed_password = new_hash
        session.add(user)
        session.commit()
    return user


@router.get(
    "/users/me",
    response_model=UserPublic,
    dependencies=[needs(Scope.READ)],
    responses=responses(NotAuthenticated, MissingScope, TooManyRequests),
)
def read_me(user: CurrentUser) -> User:
    """The user the token or API key belongs to."""
    return user
