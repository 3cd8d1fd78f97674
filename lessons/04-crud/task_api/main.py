from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from task_api import tasks

app = FastAPI(
    title="Task API",
    summary="A small API to keep track of tasks.",
    version="0.1.0",
)
app.include_router(tasks.router)

# A client fixing its request needs the first few problems, not thousands of them.
MAX_VALIDATION_ERRORS = 10


@app.exception_handler(RequestValidationError)
async def handle_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Answer 422 with where and what is wrong, but without the refused values.

    FastAPI's own handler echoes each refused value ("input"): a megabyte of text, a
    password, or a value that JSON cannot carry (NaN), which would turn the 422 into a 500.
    """
    errors = [
        {"type": error["type"], "loc": error["loc"], "msg": error["msg"]}
        for error in exc.errors()[:MAX_VALIDATION_ERRORS]
    ]
    return JSONResponse(status_code=422, content={"detail": errors})


@app.get("/")
def read_root() -> dict[str, str]:
    """Say hello and point to the interactive documentation."""
    return {"message": "Welcome to the Task API", "docs": "/docs"}


@app.get("/health")
def read_health() -> dict[str, str]:
    """Tell a load balancer (or you) that the app is up."""
    return {"status": "ok"}
