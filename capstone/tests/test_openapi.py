"""Pin the OpenAPI document, so that every change to the API shows up in review.

After an intended change, rewrite the snapshot, read its diff, then run the tests again:
    UPDATE_SNAPSHOT=1 pytest tests/test_openapi.py
"""

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from task_api.config import Settings
from task_api.main import create_app

SNAPSHOT = Path(__file__).with_name("openapi.json")


def test_openapi_document_matches_snapshot() -> None:
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    document = TestClient(app).get("/openapi.json").json()

    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        # Never a pass: a run that rewrote the snapshot has compared nothing.
        pytest.fail("Rewrote tests/openapi.json: read its diff, then run without UPDATE_SNAPSHOT")
    assert document == json.loads(SNAPSHOT.read_text())


def test_every_error_response_is_documented_with_its_body() -> None:
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    paths = TestClient(app).get("/openapi.json").json()["paths"]

    for path, operations in paths.items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert set(response["content"]) == {"application/json"}, (path, method, status)
