from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from task_api import tasks
from task_api.errors import TaskError

app = FastAPI(
    title="Task API",
    summary="A small API to keep track of tasks.",
    version="0.1.0",
)
app.include_router(tasks.router)


@app.exception_handler(TaskError)
async def handle_task_error(request: Request, exc: TaskError) -> JSONResponse:
    """Answer every TaskError with its status and FastAPI's usual body: {"detail": ...}."""
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail})


@app.get("/")
def read_root() -> dict[str, str]:
    """Say hello and point to the interactive documentation."""
    return {"message": "Welcome to the Task API", "docs": "/docs"}


@app.get("/health")
def read_health() -> dict[str, str]:
    """Tell a load balancer (or you) that the app is up."""
    return {"status": "ok"}
