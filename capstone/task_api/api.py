"""The /api/v1 router: every route of the API, but the page, /health, /ready and the docs."""

from fastapi import APIRouter

from task_api import api_keys, approvals, auth, chat, chat_ws, conversations, tasks
from task_api.runs import routes as runs

router = APIRouter(prefix="/api/v1")
router.include_router(auth.router)
router.include_router(api_keys.router)
router.include_router(tasks.router)
router.include_router(chat.router)
router.include_router(chat_ws.router)
router.include_router(conversations.router)
router.include_router(runs.router)
router.include_router(approvals.router)
