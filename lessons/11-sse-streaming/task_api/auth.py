from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from task_api.deps import CurrentUser, SessionDep, SettingsDep
from task_api.errors import UsernameTaken
from task_api.models import ErrorMessage, Token, User, UserCreate, UserPublic
from task_api.rate_limit import (
    TOO_MANY_REQUESTS,
    count_a_failed_login,
    limiter,
    login_limit,
    refuse_a_guessed_username,
    register_limit,
)
from task_api.security import (
    DUMMY_HASH,
    create_access_token,
    hash_password,
    unauthorized,
    verify_password,
)

router = APIRouter(tags=["auth"])

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "Missing, expired or invalid credentials"}
}


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserPublic,
    responses={
        409: {"model": ErrorMessage, "description": "The username is taken"},
        **TOO_MANY_REQUESTS,
    },
)
@limiter.limit(register_limit)
def register(request: Request, data: UserCreate, session: SessionDep) -> User:
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


@router.post("/auth/token", responses=UNAUTHORIZED | TOO_MANY_REQUESTS)
@limiter.limit(login_limit)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> Token:
    """Log in with the OAuth2 password flow: a form with `username` and `password`.

    Limited per client address (RATE_LIMIT_LOGIN), to slow down password guessing; failed
    logins are limited per username too, so that many addresses cannot share the guessing.
    """
    refuse_a_guessed_username(form.username, settings)
    query = select(User).where(User.username == form.username)
    # No username holds a NUL character, and PostgreSQL would refuse even to compare one.
    user = session.exec(query).first() if "\x00" not in form.username else None
    # No such user: check against a dummy hash anyway, so that the answer takes as long.
    valid, new_hash = verify_password(form.password, user.hashed_password if user else DUMMY_HASH)
    if user is None or not valid:
        count_a_failed_login(form.username, settings)
        raise unauthorized("Incorrect username or password")
    if new_hash is not None:  # an older hash: store the Argon2id one now that we can
        user.hashed_password = new_hash
        session.add(user)
        session.commit()
    assert user.id is not None
    return Token(
        access_token=create_access_token(user.id, settings),
        expires_in=settings.access_token_expire_minutes * 60,
    )


@router.get("/users/me", response_model=UserPublic, responses=UNAUTHORIZED)
def read_me(user: CurrentUser) -> User:
    """The user the token belongs to."""
    return user
