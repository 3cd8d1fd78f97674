from fastapi.testclient import TestClient

from task_api.main import MAX_BODY_SIZE

JSON = {"Content-Type": "application/json"}


def test_root_says_hello(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.json() == {"message": "Welcome to the Test API", "docs": "/docs"}


def test_health_is_ok(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "environment": "development"}


def test_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "Task API"


def test_a_body_up_to_the_limit_is_read(client: TestClient) -> None:
    response = client.post("/tasks", content=b" " * MAX_BODY_SIZE, headers=JSON)

    assert response.status_code == 422  # read, and found not to be JSON


def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    response = client.post("/tasks", content=b" " * (MAX_BODY_SIZE + 1), headers=JSON)

    # Its Content-Length gave it away: Starlette answers at once, in plain text.
    assert (response.status_code, response.text) == (413, "Content Too Large")
