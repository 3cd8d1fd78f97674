"""WS /api/v1/agent/ws: the streamed chat over a WebSocket, many turns on one connection.

1. Send the credentials as the first message, within CREDENTIALS_WITHIN_SECONDS:
   `{"token": "..."}` or `{"api_key": "..."}` (never in the URL: URLs end up in logs).
   Refused or missing credentials close the socket with 1008.
2. Send a turn: `{"message": ..., "session_id"?, "temperature"?, "max_output_tokens"?}`.
   The server answers with the events of /agent/chat/stream, one JSON message each:
   `{"event": "delta", "data": {"text": "..."}}`, the turn ending with `done` or `error`,
   or `approval` when tool calls wait for a decision: answer each with
   `{"approval": id, "approve": true}` or `{"approval": id, "approve": false, "reason"?}`,
   and the turn goes on (a chat's; a run's is queued again: `status` says so).
   A later turn without a session_id continues the conversation of the one before.
3. A message that is not text closes with 1003; one that is not a valid turn, with 1007.

The credentials are checked again before each turn and, between turns, every
CREDENTIALS_RECHECK_SECONDS: once they no longer hold (the token expired, the key was
revoked), the socket closes with 1008. A client that disconnects during a turn cancels it,
as on the SSE route.
"""

import asyncio
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from task_api.agents.pauses import ApprovalStore
from task_api.agents.turns import Done, Failed, Turn, TurnEvent, data_of, run_turn
from task_api.approvals import decide
from task_api.deps import CREDENTIALS_RECHECK_SECONDS, AgentsDep, Credentials, get_turn
from task_api.errors import (
    AgentsBusy,
    AppError,
    BadMessage,
    MissingScope,
    NotAuthenticated,
    TooManyRequests,
)
from task_api.events import AgentEventType
from task_api.models import ApprovalAnswer, ChatRequest, Scope, User
from task_api.runs.models import RunAccepted

router = APIRouter()

# RFC 6455 close codes (refused credentials close with 1008: errors.AppError.close_code).
UNSUPPORTED_DATA = 1003  # not a text message
INVALID_PAYLOAD = 1007  # text, but not a turn
CREDENTIALS_WITHIN_SECONDS = 5.0  # a socket that never logs in holds nothing for long


def parse(message: dict[str, Any]) -> dict[str, Any]:
    """A WebSocket message as JSON: 1003 for a binary one, 1007 for text that is not JSON."""
    if message.get("text") is None:
        raise BadMessage("Send text messages, in JSON", UNSUPPORTED_DATA)
    try:
        parsed = json.loads(message["text"])
    except ValueError:
        raise BadMessage("Not JSON", INVALID_PAYLOAD) from None
    if not isinstance(parsed, dict):
        raise BadMessage("Send a JSON object", INVALID_PAYLOAD)
    return parsed


async def next_message(websocket: WebSocket) -> dict[str, Any]:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return parse(message)


async def read_credentials(websocket: WebSocket) -> Credentials:
    """The first message's credentials, not yet checked."""
    try:
        async with asyncio.timeout(CREDENTIALS_WITHIN_SECONDS):
            first = await next_message(websocket)
    except TimeoutError:
        raise NotAuthenticated("Send the credentials first") from None
    token, api_key = first.get("token"), first.get("api_key")
    if not isinstance(token, str | None) or not isinstance(api_key, str | None):
        raise NotAuthenticated("Could not validate credentials")
    state = websocket.app.state
    return Credentials(state.engine, state.settings, token, api_key)


@router.websocket("/agent/ws")
async def chat_over_websocket(websocket: WebSocket, agents: AgentsDep) -> None:
    await websocket.accept()
    try:
        credentials = await read_credentials(websocket)
        await converse(websocket, credentials, agents)
    except AppError as refused:  # not a turn, no (more) credentials, too many sockets
        await websocket.close(refused.close_code, refused.detail[:123])
    except WebSocketDisconnect:
        return


async def next_turn(websocket: WebSocket, credentials: Credentials) -> dict[str, Any]:
    """The client's next message. While it is awaited, the credentials are checked again
    every CREDENTIALS_RECHECK_SECONDS: NotAuthenticated once they no longer hold."""
    while True:
        try:
            async with asyncio.timeout(CREDENTIALS_RECHECK_SECONDS):
                return await next_message(websocket)
        except TimeoutError:
            await credentials.caller()


async def converse(websocket: WebSocket, credentials: Credentials, agents: AgentsDep) -> None:
    """Take turns until the client leaves, sends what is not a turn, or its credentials end."""
    user = (await credentials.caller()).user
    assert user.id is not None
    with websocket.app.state.rate_limits.holding_open(user.id):
        await take_turns(websocket, credentials, agents)


async def take_turns(websocket: WebSocket, credentials: Credentials, agents: AgentsDep) -> None:
    conversation_id: str | None = None
    pending: dict[str, Any] | None = None
    while True:
        body = pending if pending is not None else await next_turn(websocket, credentials)
        request = read_request(body)
        if isinstance(request, ChatRequest):
            request.session_id = request.session_id or conversation_id
        caller = await credentials.caller()  # before each turn, as on a request
        if Scope.AGENT not in caller.scopes:
            raise MissingScope.lacking(Scope.AGENT)
        user = caller.user
        assert user.id is not None
        try:
            await websocket.app.state.rate_limits.hit_user(user.id)
            async with websocket.app.state.admission.turn():  # as for a chat: in order
                ended, pending = await respond(websocket, request, user, agents)
        except (TooManyRequests, AgentsBusy) as refused:  # over the limit, or too busy
            await send(websocket, Failed.of(refused))
            ended, pending = None, None
        if isinstance(request, ChatRequest):
            conversation_id = ended or request.session_id


async def respond(
    websocket: WebSocket, request: ChatRequest | ApprovalAnswer, user: User, agents: AgentsDep
) -> tuple[str | None, dict[str, Any] | None]:
    """Answer one message, a turn or an approval's answer: (the conversation's id once the
    turn is done, a message the client sent meanwhile)."""
    try:
        turn = await turn_for(websocket, request, user, agents)
    except AppError as refused:  # someone else's conversation, an approval decided already
        await send(websocket, Failed.of(refused))
        return None, None
    if turn is None:  # a run's approval, answered: a worker resumes the run
        return None, None
    return await take_turn(websocket, turn, agents)


async def turn_for(
    websocket: WebSocket, request: ChatRequest | ApprovalAnswer, user: User, agents: AgentsDep
) -> Turn | None:
    """The turn a message starts: a new one, or one that goes on after an approval's answer;
    None for a background run's approval (a worker resumes the run, and `status` says so)."""
    state = websocket.app.state
    if isinstance(request, ChatRequest):
        return await get_turn(request, user, state.broker)
    approvals = ApprovalStore(state.engine, state.run_queue.notifier, user.id)
    decided = await decide(approvals, request.approval, request, agents, state.broker)
    if isinstance(decided, RunAccepted):
        status = {"status": decided.status, "run_id": decided.id}
        await websocket.send_json({"event": AgentEventType.STATUS, "data": status})
        return None
    return decided


def read_request(body: dict[str, Any]) -> ChatRequest | ApprovalAnswer:
    """A turn, or the answer to an approval; 1007 for anything else."""
    model = ApprovalAnswer if "approval" in body else ChatRequest
    try:
        return model.model_validate(body)
    except ValidationError as error:
        detail = "; ".join(e["msg"] for e in error.errors(include_url=False)[:3])
        what = "an approval's answer" if model is ApprovalAnswer else "a turn"
        raise BadMessage(f"Not {what}: {detail}", INVALID_PAYLOAD) from None


async def send(websocket: WebSocket, event: TurnEvent) -> None:
    await websocket.send_json({"event": event.type, "data": data_of(event)})


async def take_turn(
    websocket: WebSocket, turn: Turn, agents: AgentsDep
) -> tuple[str | None, dict[str, Any] | None]:
    """One turn; (its conversation's id once done, a message the client sent meanwhile)."""
    sending = asyncio.create_task(send_turn(websocket, turn, agents))
    listening = asyncio.create_task(websocket.receive())
    await asyncio.wait([sending, listening], return_when=asyncio.FIRST_COMPLETED)
    if not sending.done():  # the client spoke during the turn: it left, or did not wait
        sending.cancel()  # cancels the run, as a hang-up does on the SSE route
        await asyncio.wait([sending])
        if listening.result()["type"] == "websocket.disconnect":
            raise WebSocketDisconnect()
        raise BadMessage("One turn at a time: wait for its done or error", INVALID_PAYLOAD)
    listening.cancel()
    await asyncio.wait([listening])
    pending = None
    if not listening.cancelled():  # it came just as the turn ended: the next turn
        message = listening.result()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect()
        pending = parse(message)
    return sending.result(), pending


async def send_turn(websocket: WebSocket, turn: Turn, agents: AgentsDep) -> str | None:
    conversation_id = None
    async for event in run_turn(agents, turn, websocket.app.state.settings):
        await send(websocket, event)
        if isinstance(event, Done):
            conversation_id = event.session_id
    return conversation_id
