"""The whole API against its own OpenAPI document, with requests Schemathesis makes up.

For each operation it sends valid and invalid bodies, queries, headers and ids, as a user
with a token and as one with an API key, and checks that no answer is a 5xx, that every
status code is one the document lists, and that every body matches its documented schema.
The stateful test follows the links it finds between operations (create a task, then
read, change and delete it) in random orders.
"""

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import hypothesis
import pytest
from conftest import API, settings_for
from fastapi.testclient import TestClient
from sqlmodel import SQLModel

from task_api.main import create_app

schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis")
from schemathesis import checks  # noqa: E402
from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402

# The live streams never end by themselves: a generated call would wait forever.
ENDLESS = r"/events$"
# No 5xx; only documented status codes; bodies, content types and headers as documented.
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
EXAMPLES = hypothesis.settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here fails again
    database=None,  # and nothing kept between runs
    suppress_health_check=list(hypothesis.HealthCheck),
)


FOLDER = Path(tempfile.mkdtemp(prefix="schema-"))
app = create_app(
    settings_for(
        f"sqlite:///{FOLDER / 'tasks.db'}",
        # Limits that a few thousand generated calls do not reach: here they would only
        # answer 429, which says nothing about the rest.
        rate_limit_api="1000000/minute",
        rate_limit_login="1000000/minute",
        rate_limit_register="1000000/minute",
        log_level="ERROR",
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=ENDLESS)


@pytest.fixture(scope="module", autouse=True)
def served() -> Iterator[None]:
    with TestClient(app):  # runs the lifespan: migrations, model, worker
        yield
    shutil.rmtree(FOLDER, ignore_errors=True)


@pytest.fixture(scope="module")
def credentials(served: None) -> dict[str, dict[str, str]]:
    """The headers of a user with a token, and of one with an API key."""
    client = TestClient(app, base_url=f"http://testserver{API}")
    headers = {}
    for name in ("token", "key"):
        account = {"username": f"schema-{name}", "password": "schema password 1"}
        client.post("/auth/register", json=account).raise_for_status()
        token = client.post("/auth/token", data=account).json()["access_token"]
        headers[name] = {"Authorization": f"Bearer {token}"}
    made = client.post("/api-keys", json={"name": "schema"}, headers=headers["key"])
    headers["key"] = {"X-API-Key": made.json()["key"]}
    return headers


@schema.parametrize()
@EXAMPLES
def test_with_a_token_every_operation_keeps_to_its_document(
    case: Any, credentials: dict[str, dict[str, str]]
) -> None:
    case.call_and_validate(headers=credentials["token"], checks=CHECKS)


@schema.parametrize()
@EXAMPLES
def test_with_an_api_key_every_operation_keeps_to_its_document(
    case: Any, credentials: dict[str, dict[str, str]]
) -> None:
    case.call_and_validate(headers=credentials["key"], checks=CHECKS)


class APIWorkflows(schema.as_state_machine()):  # type: ignore[misc]
    """Sequences of calls, each feeding the next (a task made, then read, changed, deleted),
    following the links Schemathesis infers between the operations."""

    headers: ClassVar[dict[str, str]] = {}

    def setup(self) -> None:
        """Each sequence starts from the same state: no tasks, conversations or runs, and only
        the API key the tests made (Hypothesis replays a sequence and expects the same)."""
        wait_for_the_worker()
        with app.state.engine.begin() as connection:
            for table in reversed(SQLModel.metadata.sorted_tables):
                if table.name == "api_key":
                    connection.execute(table.delete().where(table.c.name != "schema"))
                elif table.name != "user":
                    connection.execute(table.delete())

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"headers": self.headers}

    def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
        case.validate_response(response, checks=CHECKS)


def wait_for_the_worker() -> None:
    """Let the app's worker finish a run an earlier sequence queued."""
    deadline = time.monotonic() + 30
    while app.state.worker.running and time.monotonic() < deadline:
        time.sleep(0.01)


def test_sequences_of_calls_keep_to_the_document(credentials: dict[str, dict[str, str]]) -> None:
    APIWorkflows.headers = credentials["token"]
    APIWorkflows.run(
        settings=hypothesis.settings(
            max_examples=40,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
