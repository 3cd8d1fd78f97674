from fastapi import FastAPI

from task_api import tasks

app = FastAPI(
    title="Task API",
    summary="A small API to keep track of tasks.",
    version="0.1.0",
)
app.include_router(tasks.router)


@app.get("/")
def read_root() -> dict[str, str]:
    """Say hello and point to the interactive documentation."""
    return {"message": "Welcome to the Task API", "docs": "/docs"}


@app.get("/health")
def read_health() -> dict[str, str]:
    """Tell a load balancer (or you) that the app is up."""
    return {"status": "ok"}
