from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from task_api.deps import CurrentUser, SessionDep, SettingsDep
from task_api.errors import UsernameTaken
from task_api.models import ErrorMessage, Token, User, UserCreate, UserPublic
from task_api.rate_limit import TOO_MANY_REQUESTS, limiter, login_limit
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
    responses={409: {"model": ErrorMessage, "description": "The username is taken"}},
)
def register(data: UserCreate, session: SessionDep) -> User:
    """Create an account. The password is stored only as a hash."""
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

    Limited per client address (RATE_LIMIT_LOGIN), to slow down password guessing.
    """
    query = select(User).where(User.username == form.username)
    # No username holds a NUL character, and PostgreSQL would refuse even to compare one.
    user = session.exec(query).first() if "\x00" not in form.username else None
    if user is None:
        verify_password(form.password, DUMMY_HASH)
        raise unauthorized("Incorrect username or password")
    valid, new_hash = verify_password(form.password, user.hashed_password)
    if not valid:
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
