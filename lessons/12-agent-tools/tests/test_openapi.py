"""Pin the OpenAPI document, so that every change to the API shows up in review.

After an intended change, rewrite the snapshot, read its diff, then run the tests again:
    UPDATE_SNAPSHOT=1 pytest tests/test_openapi.py
"""

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from task_api.main import app

SNAPSHOT = Path(__file__).with_name("openapi.json")


def test_openapi_document_matches_snapshot() -> None:
    document = TestClient(app).get("/openapi.json").json()

    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        # Never a pass: a run that rewrote the snapshot has compared nothing.
        pytest.fail("Rewrote tests/openapi.json: read its diff, then run without UPDATE_SNAPSHOT")
    assert document == json.loads(SNAPSHOT.read_text())
