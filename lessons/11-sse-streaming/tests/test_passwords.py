import base64
import hashlib
import secrets

from conftest import PASSWORD
from fastapi.testclient import TestClient
from sqlmodel import Session

from task_api.models import User
from task_api.security import hash_password, verify_password


def lesson_08_hash(password: str, iterations: int = 1_000) -> str:
    """A hash as lesson 08 stored it: PBKDF2-SHA256 (few iterations, to keep the test fast)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    encode = base64.b64encode
    return f"pbkdf2_sha256${iterations}${encode(salt).decode()}${encode(digest).decode()}"


def add_user(session: Session, hashed_password: str) -> User:
    user = User(username="dora", hashed_password=hashed_password)
    session.add(user)
    session.commit()
    return user


def login(client: TestClient, password: str = PASSWORD) -> int:
    return client.post("/auth/token", data={"username": "dora", "password": password}).status_code


def test_new_hashes_are_argon2id() -> None:
    hashed = hash_password(PASSWORD)

    assert hashed.startswith("$argon2id$")
    assert verify_password(PASSWORD, hashed) == (True, None)
    assert verify_password("not the password", hashed) == (False, None)


def test_an_older_hash_is_upgraded_at_the_next_login(
    anonymous_client: TestClient, session: Session
) -> None:
    user = add_user(session, lesson_08_hash(PASSWORD))

    assert login(anonymous_client) == 200

    session.refresh(user)
    assert user.hashed_password.startswith("$argon2id$")
    assert login(anonymous_client) == 200


def test_a_failed_login_leaves_an_older_hash_alone(
    anonymous_client: TestClient, session: Session
) -> None:
    old_hash = lesson_08_hash(PASSWORD)
    user = add_user(session, old_hash)

    assert login(anonymous_client, "wrong password") == 401

    session.refresh(user)
    assert user.hashed_password == old_hash


def test_a_damaged_hash_is_a_failed_login_not_an_error(
    anonymous_client: TestClient, session: Session
) -> None:
    add_user(session, "pbkdf2_sha256$1000$c2FsdA==$abc")

    assert login(anonymous_client) == 401


def test_an_unknown_hash_format_is_a_failed_login_not_an_error(
    anonymous_client: TestClient, session: Session
) -> None:
    add_user(session, "md5$d41d8cd98f00b204e9800998ecf8427e")

    assert login(anonymous_client) == 401
