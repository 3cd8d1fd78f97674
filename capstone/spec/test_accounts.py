"""Accounts: register, log in, who am I; refused plainly."""

import httpx
import pytest
from conftest import User

pytestmark = pytest.mark.accounts


def test_who_am_i(alice: User) -> None:
    me = alice.api.get("/users/me")
    assert (me.status_code, me.json()["username"]) == (200, alice.username)


def test_a_name_is_taken_once(alice: User, anonymous: httpx.Client) -> None:
    again = {"username": alice.username, "password": "another password here"}
    assert anonymous.post("/auth/register", json=again).status_code == 409


def test_a_wrong_password_is_401(alice: User, anonymous: httpx.Client) -> None:
    wrong = {"username": alice.username, "password": "not the password at all"}
    reply = anonymous.post("/auth/token", data=wrong)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "Bearer"


def test_no_token_and_a_forged_token_are_401(anonymous: httpx.Client) -> None:
    assert anonymous.get("/users/me").status_code == 401
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}
    assert anonymous.get("/users/me", headers=forged).status_code == 401
