"""API keys: for programs, beside the login tokens people use. Shown once, revocable."""

from fastapi import APIRouter, Depends, Response

from task_api.deps import CurrentUser, SessionDep, login_only
from task_api.errors import (
    ApiKeyNotFound,
    MissingScope,
    NotAuthenticated,
    TooManyRequests,
    responses,
)
from task_api.models import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from task_api.repository import ApiKeyRepository
from task_api.security import api_key_prefix, hash_api_key, new_api_key

router = APIRouter(
    prefix="/api-keys",
    tags=["api keys"],
    dependencies=[Depends(login_only)],  # a leaked key cannot leave a backdoor behind
    responses=responses(NotAuthenticated, MissingScope, TooManyRequests),
)


@router.post("", status_code=201, responses=responses(reads_body=True))
def create_api_key(
    data: ApiKeyCreate, response: Response, user: CurrentUser, session: SessionDep
) -> ApiKeyCreated:
    """Make a key for a program to send as `X-API-Key`. Keep it: it is shown only this once."""
    assert user.id is not None
    key = new_api_key()
    stored = ApiKeyRepository(session).save(
        ApiKey(
            owner_id=user.id,
            name=data.name,
            prefix=api_key_prefix(key),
            hashed_key=hash_api_key(key),
            scopes=" ".join(dict.fromkeys(data.scopes)),  # each once, in the order given
        )
    )
    response.headers["Location"] = f"/api/v1/api-keys/{stored.id}"
    response.headers["Cache-Control"] = "no-store"  # the key: shown once, kept by no cache
    return ApiKeyCreated.model_validate({**public(stored).model_dump(), "key": key})


@router.get("")
def list_api_keys(user: CurrentUser, session: SessionDep) -> list[ApiKeyPublic]:
    """Your keys, oldest first: their names and prefixes, never the keys."""
    assert user.id is not None
    keys = ApiKeyRepository(session).list_keys(user.id)
    return [public(key) for key in keys]


@router.delete("/{key_id}", status_code=204, responses=responses(ApiKeyNotFound))
def delete_api_key(key_id: int, user: CurrentUser, session: SessionDep) -> None:
    """Revoke a key: from now on, a request that sends it is refused."""
    assert user.id is not None
    keys = ApiKeyRepository(session)
    key = keys.get(user.id, key_id)
    if key is None:
        raise ApiKeyNotFound(key_id)
    keys.delete(key)


def public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate({**key.model_dump(), "scopes": key.scopes.split()})
