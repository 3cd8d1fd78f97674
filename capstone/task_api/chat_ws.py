"""WS /api/v1/agent/ws: the streamed chat over a WebSocket, many turns on one connection.

1. Connect with `?token=...` or `?api_key=...`, or send `{"token": ...}` (or `{"api_key":
   ...}`) as the first message. Refused credentials close the socket with 1008.
2. Send a turn: `{"message": ..., "session_id"?, "temperature"?, "max_output_tokens"?}`.
   The server answers with the events of /agent/chat/stream, one JSON message each:
   `{"event": "delta", "data": {"text": "..."}}`, the turn ending with `done` or `error`.
   A later turn without a session_id continues the conversation of the one before.
3. A message that is not text closes with 1003; one that is not a valid turn, with 1007.

A client that disconnects during a turn cancels it, as on the SSE route.
"""

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from agents import Agent
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlmodel import Session

from task_api.chat import AgentsDep
from task_api.config import Settings
from task_api.deps import RateLimitsDep, SettingsDep, authenticate
from task_api.errors import AppError, NotAuthenticated
from task_api.memory import ConversationStore
from task_api.models import ChatRequest, User
from task_api.rate_limit import RateLimits
from task_api.streaming import Done, Turn, data_of, run_turn
from task_api.tools import TaskContext

router = APIRouter()

# RFC 6455 close codes.
POLICY_VIOLATION = 1008  # the credentials
UNSUPPORTED_DATA = 1003  # not a text message
INVALID_PAYLOAD = 1007  # text, but not a turn


class BadMessage(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def parse(message: dict[str, Any]) -> dict[str, Any]:
    """A WebSocket message as JSON: 1003 for a binary one, 1007 for text that is not JSON."""
    if message.get("text") is None:
        raise BadMessage(UNSUPPORTED_DATA, "Send text messages, in JSON")
    try:
        parsed = json.loads(message["text"])
    except ValueError:
        raise BadMessage(INVALID_PAYLOAD, "Not JSON") from None
    if not isinstance(parsed, dict):
        raise BadMessage(INVALID_PAYLOAD, "Send a JSON object")
    return parsed


async def next_message(websocket: WebSocket) -> dict[str, Any]:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return parse(message)


async def log_in(websocket: WebSocket, settings: Settings) -> User:
    """By the query string, or else by the first message."""
    token = websocket.query_params.get("token")
    api_key = websocket.query_params.get("api_key")
    if token is None and api_key is None:
        first = await next_message(websocket)
        token, api_key = first.get("token"), first.get("api_key")
        if not isinstance(token, str | None) or not isinstance(api_key, str | None):
            raise NotAuthenticated("Could not validate credentials")
    with Session(websocket.app.state.engine) as session:
        return await run_in_threadpool(authenticate, session, settings, token, api_key)


@router.websocket("/agent/ws")
async def chat_over_websocket(
    websocket: WebSocket, settings: SettingsDep, agents: AgentsDep, limits: RateLimitsDep
) -> None:
    await websocket.accept()
    try:
        user = await log_in(websocket, settings)
    except (NotAuthenticated, BadMessage):
        await websocket.close(POLICY_VIOLATION, "Not authenticated")
        return
    except WebSocketDisconnect:
        return
    assert user.id is not None
    session_id: str | None = None
    pending: dict[str, Any] | None = None
    try:
        while True:
            body = pending if pending is not None else await next_message(websocket)
            pending = None
            try:
                request = ChatRequest.model_validate(body)
            except ValidationError as error:
                detail = "; ".join(e["msg"] for e in error.errors(include_url=False)[:3])
                raise BadMessage(INVALID_PAYLOAD, f"Not a turn: {detail}") from None
            if request.session_id is None:
                request.session_id = session_id
            session_id, pending = await take_turn(
                websocket, user, request, Chat(settings, agents, limits)
            )
    except BadMessage as bad:
        await websocket.close(bad.code, bad.reason[:123])
    except WebSocketDisconnect:
        return


@dataclass
class Chat:
    """What a connection's turns use: resolved once, when it opens."""

    settings: Settings
    agents: Agent[TaskContext]
    limits: RateLimits


async def take_turn(
    websocket: WebSocket, user: User, request: ChatRequest, chat: Chat
) -> tuple[str | None, dict[str, Any] | None]:
    """One turn; (its conversation's id, a message the client sent meanwhile)."""
    app = websocket.app
    assert user.id is not None
    try:
        await chat.limits.hit(chat.limits.settings.rate_limit_api, f"user:{user.id}", "api")
        history = await run_in_threadpool(
            load_history, app.state.engine, user.id, request.session_id
        )
    except AppError as error:
        await websocket.send_json(
            {"event": "error", "data": {"detail": error.detail, "status": error.status_code}}
        )
        return request.session_id, None
    context = TaskContext(owner_id=user.id, engine=app.state.engine, events=app.state.broker)
    turn = Turn(request.message, request.session_id, history, context)
    turn.model_settings.temperature = request.temperature
    turn.model_settings.max_tokens = request.max_output_tokens
    sending = asyncio.create_task(send_turn(websocket, turn, chat))
    listening = asyncio.create_task(websocket.receive())
    await asyncio.wait([sending, listening], return_when=asyncio.FIRST_COMPLETED)
    if not sending.done():  # the client spoke during the turn: it left, or did not wait
        sending.cancel()  # cancels the run, as a hang-up does on the SSE route
        await asyncio.wait([sending])
        if listening.result()["type"] == "websocket.disconnect":
            raise WebSocketDisconnect()
        raise BadMessage(INVALID_PAYLOAD, "One turn at a time: wait for its done or error")
    listening.cancel()
    await asyncio.wait([listening])
    pending = None
    if not listening.cancelled():  # it came just as the turn ended: the next turn
        message = listening.result()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect()
        pending = parse(message)
    return sending.result() or request.session_id, pending


async def send_turn(websocket: WebSocket, turn: Turn, chat: Chat) -> str | None:
    session_id = None
    async for event in run_turn(chat.agents, turn, chat.settings):
        await websocket.send_json({"event": event.event, "data": data_of(event)})
        if isinstance(event, Done):
            session_id = event.session_id
    return session_id


def load_history(engine: Any, owner_id: int, session_id: str | None) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return ConversationStore(session, owner_id=owner_id).history(session_id)
