"""A demo for part 06, not part of the service: BackgroundTasks keeps its job in the process.

    uvicorn guide.background_tasks_demo:app     (from capstone/)

POST /reports answers at once and writes report.txt ten seconds later, if the process still
runs then. Stop it before, and the job is gone: no table, no file, no log says it existed.
"""

import time
from pathlib import Path

from fastapi import BackgroundTasks, FastAPI

REPORT = Path("report.txt")

app = FastAPI(title="BackgroundTasks demo")


def write_report(name: str) -> None:
    """The slow job: ten seconds of work, then the file."""
    time.sleep(10)
    REPORT.write_text(f"The {name} report, done.\n")


@app.post("/reports", status_code=202)
def start_report(name: str, background_tasks: BackgroundTasks) -> dict[str, str]:
    """Answered before the job starts: the job runs after the response, in this process."""
    background_tasks.add_task(write_report, name)
    return {"status": "started", "report": name}
