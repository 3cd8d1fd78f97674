"""The floor to measure the capstone against: the same two model calls, with nothing else.

Each takes the path OPENAI_API names: Chat Completions (the default) or the Responses API.

`floor` streams a chat as the capstone's route does, through one AsyncOpenAI client shared by
every request (built once, in the lifespan): a first call that asks for a tool, a second
that streams the answer, each delta sent as a Server-Sent Event. No auth, no database, no
agents: what Python needs, at least, to serve these chats.

`naive` is the pattern many tutorials show: the synchronous OpenAI client, called inside
`async def`. Each call blocks the event loop: the chats run one at a time.

`sdk` is the floor for the Agents SDK: the same model calls as the capstone's (a triage
agent handing off to a Reporter that answers) through Runner.run_streamed, on one shared
client, each delta sent as an event. No auth, no database: what the SDK costs by itself.

`bare` is the floor for plain requests (benchmarks/service.py): task create, read, change
and delete as four routes on the capstone's tables and SQLite set-up, with nothing else.

    uvicorn floor:floor --app-dir benchmarks      uvicorn floor:naive --app-dir benchmarks
"""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agents import Agent, RawResponsesStreamEvent, RunConfig, Runner, function_tool
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI, OpenAI
from sqlmodel import Session, SQLModel

from task_api.database import create_db_engine
from task_api.models import Task, TaskCreate, TaskUpdate, User

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "list_tasks",
            "description": "List the user's tasks.",
            "parameters": {"type": "object", "properties": {}},
        },
    }
]
# The Responses API's form of the same tool.
RESPONSES_TOOLS: list[Any] = [{"type": "function", **TOOLS[0]["function"]}]
BASE_URL = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8100/v1")
MODEL = os.environ.get("AGENT_MODEL", "standin")
# The path to measure, as the capstone's OPENAI_API names it: Chat Completions, or Responses
# (what the capstone uses with OpenAI itself).
API = os.environ.get("OPENAI_API", "chat_completions")


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def first_request(message: str) -> list[Any]:
    return [{"role": "user", "content": message}]


def with_tool_result(messages: list[Any], call: Any) -> list[Any]:
    return [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "[]"},
    ]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncOpenAI(base_url=BASE_URL, api_key="benchmark") as client:
        app.state.client = client
        yield


floor = FastAPI(lifespan=lifespan)


@floor.post("/chat/stream")
async def floor_chat(request: Request) -> StreamingResponse:
    message = (await request.json())["message"]
    client: AsyncOpenAI = request.app.state.client
    if API == "responses":
        return StreamingResponse(responses_answer(client, message), media_type="text/event-stream")

    async def answer() -> AsyncIterator[str]:
        messages = first_request(message)
        call: dict[str, Any] = {
            "id": "",
            "type": "function",
            "function": {"name": "", "arguments": ""},
        }
        stream = await client.chat.completions.create(
            model=MODEL, messages=messages, tools=TOOLS, stream=True
        )
        async for chunk in stream:
            delta = chunk.choices[0].delta if chunk.choices else None
            for part in (delta.tool_calls or []) if delta else []:
                call["id"] = part.id or call["id"]
                if part.function:
                    call["function"]["name"] += part.function.name or ""
                    call["function"]["arguments"] += part.function.arguments or ""
        yield event("tool_call", {"name": call["function"]["name"]})
        stream = await client.chat.completions.create(
            model=MODEL, messages=with_tool_result(messages, call), tools=TOOLS, stream=True
        )
        reply = ""
        async for chunk in stream:
            if chunk.choices and (text := chunk.choices[0].delta.content):
                reply += text
                yield event("delta", {"text": text})
        yield event("done", {"reply": reply})

    return StreamingResponse(answer(), media_type="text/event-stream")


async def responses_answer(client: AsyncOpenAI, message: str) -> AsyncIterator[str]:
    """The same two calls through the Responses API: a tool call, then the streamed answer."""
    request: list[Any] = first_request(message)
    call: Any = None
    stream = await client.responses.create(
        model=MODEL, input=request, tools=RESPONSES_TOOLS, stream=True
    )
    async for item in stream:
        if item.type == "response.output_item.done" and item.item.type == "function_call":
            call = item.item
    yield event("tool_call", {"name": call.name})
    request += [
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": "{}"},
        {"type": "function_call_output", "call_id": call.call_id, "output": "[]"},
    ]
    stream = await client.responses.create(
        model=MODEL, input=request, tools=RESPONSES_TOOLS, stream=True
    )
    reply = ""
    async for item in stream:
        if item.type == "response.output_text.delta":
            reply += item.delta
            yield event("delta", {"text": item.delta})
    yield event("done", {"reply": reply})


@asynccontextmanager
async def sdk_lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncOpenAI(base_url=BASE_URL, api_key="benchmark") as client:
        model: Any = OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
        if API == "responses":
            model = OpenAIResponsesModel(model=MODEL, openai_client=client)
        reporter = Agent(name="Reporter", instructions="Report.", tools=[list_tasks], model=model)
        app.state.agent = Agent(
            name="TaskManager", instructions="Triage.", handoffs=[reporter], model=model
        )
        yield


@function_tool
def list_tasks() -> str:
    """List the user's tasks."""
    return "[]"


sdk = FastAPI(lifespan=sdk_lifespan)
SDK_RUN = RunConfig(tracing_disabled=True)


@sdk.post("/chat/stream")
async def sdk_chat(request: Request) -> StreamingResponse:
    message = (await request.json())["message"]

    async def answer() -> AsyncIterator[str]:
        run = Runner.run_streamed(request.app.state.agent, message, run_config=SDK_RUN)
        async for item in run.stream_events():
            is_raw = isinstance(item, RawResponsesStreamEvent)
            if is_raw and item.data.type == "response.output_text.delta":
                yield event("delta", {"text": item.data.delta})
        yield event("done", {"reply": run.final_output})

    return StreamingResponse(answer(), media_type="text/event-stream")


@asynccontextmanager
async def sync_lifespan(app: FastAPI) -> AsyncIterator[None]:
    with OpenAI(base_url=BASE_URL, api_key="benchmark") as client:
        app.state.client = client
        yield


naive = FastAPI(lifespan=sync_lifespan)


@naive.post("/chat/stream")
async def naive_chat(request: Request) -> StreamingResponse:
    message = (await request.json())["message"]
    client: OpenAI = request.app.state.client

    async def answer() -> AsyncIterator[str]:
        # The mistake: the synchronous client inside `async def`. Every call, and every wait
        # for the next chunk, blocks the event loop: no other chat moves meanwhile.
        messages = first_request(message)
        first = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        call = first.choices[0].message.tool_calls[0].model_dump()  # type: ignore[index]
        yield event("tool_call", {"name": call["function"]["name"]})
        stream = client.chat.completions.create(
            model=MODEL, messages=with_tool_result(messages, call), tools=TOOLS, stream=True
        )
        reply = ""
        for chunk in stream:
            if chunk.choices and (text := chunk.choices[0].delta.content):
                reply += text
                yield event("delta", {"text": text})
        yield event("done", {"reply": reply})

    return StreamingResponse(answer(), media_type="text/event-stream")


@asynccontextmanager
async def bare_lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_db_engine(os.environ.get("DATABASE_URL", "sqlite:///./bare.db"))
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:  # the owner of every task here
        if session.get(User, 1) is None:
            session.add(User(id=1, username="bare", hashed_password="-"))
            session.commit()
    app.state.engine = engine
    yield
    engine.dispose()


bare = FastAPI(lifespan=bare_lifespan)


@bare.post("/tasks", status_code=201)
def bare_create(data: TaskCreate, request: Request) -> Task:
    with Session(request.app.state.engine) as session:
        task = Task.model_validate(data, update={"owner_id": 1})
        session.add(task)
        session.commit()
        session.refresh(task)
        return task


@bare.get("/tasks/{task_id}")
def bare_read(task_id: int, request: Request) -> Task | None:
    with Session(request.app.state.engine) as session:
        return session.get(Task, task_id)


@bare.patch("/tasks/{task_id}")
def bare_change(task_id: int, data: TaskUpdate, request: Request) -> Task | None:
    with Session(request.app.state.engine) as session:
        task = session.get(Task, task_id)
        if task is not None:
            task.sqlmodel_update(data.model_dump(exclude_unset=True))
            session.commit()
            session.refresh(task)
        return task


@bare.delete("/tasks/{task_id}", status_code=204)
def bare_delete(task_id: int, request: Request) -> None:
    with Session(request.app.state.engine) as session:
        task = session.get(Task, task_id)
        if task is not None:
            session.delete(task)
            session.commit()
