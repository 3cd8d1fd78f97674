from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from conftest import PASSWORD, strings_in
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from task_api import auth
from task_api.config import Settings
from task_api.models import User
from task_api.security import DUMMY_HASH


def register(client: TestClient, username: str = "carol", password: str = PASSWORD) -> Any:
    return client.post("/auth/register", json={"username": username, "password": password})


def login(client: TestClient, username: str = "carol", password: str = PASSWORD) -> Any:
    return client.post("/auth/token", data={"username": username, "password": password})


def test_register(anonymous_client: TestClient) -> None:
    response = register(anonymous_client)

    assert response.status_code == 201
    assert set(response.json()) == {"id", "username", "created_at"}
    assert response.json()["username"] == "carol"


def test_passwords_are_stored_only_as_hashes(
    anonymous_client: TestClient, session: Session
) -> None:
    register(anonymous_client)

    stored = session.exec(select(User).where(User.username == "carol")).one()

    assert PASSWORD not in stored.hashed_password
    assert stored.hashed_password.startswith("$argon2id$")


def test_register_a_taken_username_is_409(anonymous_client: TestClient, user: User) -> None:
    response = register(anonymous_client, username="alice")

    assert response.status_code == 409
    assert response.json()["detail"] == "The username 'alice' is taken"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "al", "password": PASSWORD},
        {"username": "a" * 51, "password": PASSWORD},
        {"username": "carol smith", "password": PASSWORD},
        {"username": "carol/../admin", "password": PASSWORD},
        {"username": "carol", "password": "short"},
        {"username": "carol", "password": "x" * 129},
        {"username": "carol"},
        {"password": PASSWORD},
        {"username": "carol", "password": PASSWORD, "is_admin": True},
    ],
)
def test_register_rejects_bad_input(
    anonymous_client: TestClient, session: Session, body: dict[str, Any]
) -> None:
    response = anonymous_client.post("/auth/register", json=body)

    assert response.status_code == 422
    assert session.exec(select(User)).all() == []


@pytest.mark.parametrize("password", ["s3cr3t!", "Y" * 129])
def test_a_refused_password_is_not_echoed(anonymous_client: TestClient, password: str) -> None:
    response = register(anonymous_client, password=password)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]
    assert [text for text in strings_in(response.json()) if password in text] == []


def test_login_returns_a_bearer_token(anonymous_client: TestClient, settings: Settings) -> None:
    user_id = register(anonymous_client).json()["id"]

    response = login(anonymous_client)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    claims = jwt.decode(
        body["access_token"], settings.secret_key.get_secret_value(), algorithms=["HS256"]
    )
    assert claims["sub"] == str(user_id)
    assert claims["exp"] - claims["iat"] == 30 * 60


def test_the_token_opens_users_me(anonymous_client: TestClient) -> None:
    register(anonymous_client)
    token = login(anonymous_client).json()["access_token"]

    response = anonymous_client.get("/users/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json()["username"] == "carol"


@pytest.mark.parametrize(
    ("username", "password"), [("carol", "wrong password"), ("nobody", PASSWORD)]
)
def test_login_with_wrong_credentials_is_401(
    anonymous_client: TestClient, username: str, password: str
) -> None:
    register(anonymous_client)

    response = login(anonymous_client, username, password)

    assert response.status_code == 401
    assert response.json()["detail"] == "Incorrect username or password"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_unknown_username_costs_a_password_check_too(
    anonymous_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Otherwise a wrong username would be answered faster, and tell who has an account.
    checked: list[str] = []
    check = auth.verify_password
    monkeypatch.setattr(
        auth,
        "verify_password",
        lambda password, hashed: checked.append(hashed) or check(password, hashed),
    )

    login(anonymous_client, "nobody", PASSWORD)

    assert checked == [DUMMY_HASH]


def test_login_with_a_nul_in_the_username_is_401(anonymous_client: TestClient) -> None:
    response = login(anonymous_client, "car\x00ol")

    assert response.status_code == 401


def test_login_needs_a_form(anonymous_client: TestClient) -> None:
    response = anonymous_client.post("/auth/token", json={"username": "carol"})

    assert response.status_code == 422


def token_with(settings: Settings, **changes: Any) -> str:
    """A token like the app's, with some claims changed (None removes a claim)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {"sub": "1", "iat": now, "exp": now + timedelta(minutes=5)}
    key = changes.pop("key", settings.secret_key.get_secret_value())
    algorithm = changes.pop("algorithm", "HS256")
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm=algorithm)


def unsigned_token(claims: dict[str, Any]) -> str:
    """A token that says alg "none": anyone can write one."""
    return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(
            lambda s: token_with(s, exp=datetime.now(UTC) - timedelta(seconds=1)), id="expired"
        ),
        pytest.param(lambda s: token_with(s, key="another-key-" * 4), id="bad-signature"),
        pytest.param(
            lambda s: token_with(s, algorithm="HS512"),
            id="other-algorithm",
            marks=pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
        ),
        pytest.param(
            lambda s: unsigned_token({"sub": "1", "iat": 1, "exp": 9999999999}), id="alg-none"
        ),
        pytest.param(lambda s: token_with(s, sub="999"), id="unknown-user"),
        pytest.param(lambda s: token_with(s, sub="alice"), id="sub-not-an-id"),
        pytest.param(lambda s: token_with(s, sub=str(2**63)), id="sub-past-the-largest-id"),
        pytest.param(lambda s: token_with(s, sub="9" * 5000), id="sub-of-5000-digits"),
        pytest.param(lambda s: token_with(s, sub=None), id="no-sub"),
        pytest.param(lambda s: token_with(s, exp=None), id="no-exp"),
        pytest.param(lambda s: token_with(s, iat=None), id="no-iat"),
        pytest.param(lambda s: "not-a-token", id="garbage"),
        pytest.param(lambda s: "", id="empty"),
    ],
)
def test_every_bad_token_is_401(
    anonymous_client: TestClient, user: User, settings: Settings, make_token: Any
) -> None:
    headers = {"Authorization": f"Bearer {make_token(settings)}"}

    for path in ["/users/me", "/tasks"]:
        response = anonymous_client.get(path, headers=headers)

        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["detail"] == "Could not validate credentials"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/users/me"),
        ("get", "/tasks"),
        ("post", "/tasks"),
        ("get", "/tasks/1"),
        ("put", "/tasks/1"),
        ("patch", "/tasks/1"),
        ("delete", "/tasks/1"),
    ],
)
def test_every_private_route_needs_a_token(
    anonymous_client: TestClient, method: str, path: str
) -> None:
    response = anonymous_client.request(method, path, json={"title": "Sneaky"})

    assert response.status_code == 401
    assert response.json()["detail"] == "Not authenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_token_is_never_cached(anonymous_client: TestClient, user: User) -> None:
    response = anonymous_client.post(
        "/auth/token", data={"username": "alice", "password": PASSWORD}
    )

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
