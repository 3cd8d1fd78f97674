from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from task_api import tasks
from task_api.config import Settings, get_settings
from task_api.errors import TaskError

app = FastAPI(
    title=get_settings().app_name,
    summary="A small API to keep track of tasks.",
    version="0.1.0",
)
app.include_router(tasks.router)


@app.exception_handler(TaskError)
async def handle_task_error(request: Request, exc: TaskError) -> JSONResponse:
    """Answer every TaskError with its status and FastAPI's usual body: {"detail": ...}."""
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail})


@app.get("/")
def read_root(settings: Annotated[Settings, Depends(get_settings)]) -> dict[str, str]:
    """Say hello and point to the interactive documentation."""
    return {"message": f"Welcome to the {settings.app_name}", "docs": "/docs"}


@app.get("/health")
def read_health(settings: Annotated[Settings, Depends(get_settings)]) -> dict[str, str]:
    """Tell a load balancer (or you) that the app is up, and in which environment."""
    return {"status": "ok", "environment": settings.environment}
