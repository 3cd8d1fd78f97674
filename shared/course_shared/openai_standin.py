"""A local OpenAI-compatible server with a fixed, predictable policy.

Lesson tests point the real `openai` client (and the Agents SDK's
`OpenAIChatCompletionsModel`) at it, so the whole HTTP path runs without a key or a
network. It speaks the Chat Completions wire format, streamed and not, and the Responses API's
(`POST /v1/responses`, streamed and not) with the same policy:

- tools offered, no tool result since the last user message -> one call to
  `config.tool_call` (when that tool is offered);
- otherwise text: `config.reply`, or a default that quotes the last tool output.

It can also fail on purpose: every request answered with an HTTP error (`fail_with`),
or broken in one of the ways of `MISBEHAVIOURS` (`misbehave`): a client must survive both.

Run it in a test::

    with run_standin(StandinConfig(tool_call=("list_tasks", {}))) as base_url:
        client = AsyncOpenAI(base_url=base_url, api_key="k")

or by hand: `python -m course_shared.openai_standin --port 8100 --first-token-delay 0.3`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_REPLY = "Hello from the stand-in model."
TOOL_REPLY = "Here is what I found: {tool_output}"
TOOL_OUTPUT_LIMIT = 500

_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


@dataclass
class RecordedRequest:
    """One request the stand-in received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


# Ways a broken or impostor server answers: 200 with an HTML page, 200 with an empty JSON
# object, a stream of lines that are not JSON, or a stream cut off after its first words.
Misbehaviour = Literal["html", "empty-json", "garbage-stream", "cut-stream"]
MISBEHAVIOURS: tuple[Misbehaviour, ...] = get_args(Misbehaviour)


@dataclass
class StandinConfig:
    """How the stand-in answers; read on every request, so a test may change it live."""

    # (name, arguments) of the one tool to call when it is offered ("a|b": the first of
    # these that is offered); None: never call tools.
    tool_call: tuple[str, dict[str, Any]] | None = None
    # Text answer; "{tool_output}" in it becomes the last tool output (truncated).
    reply: str | None = None
    model: str = "standin"
    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    # When set, only `Authorization: Bearer <require_api_key>` is accepted (else 401).
    require_api_key: str | None = None
    # When set, every request answers this HTTP status with an OpenAI-style error body.
    fail_with: int | None = None
    # When set, every answer is broken in this way (see MISBEHAVIOURS), to test clients.
    misbehave: Misbehaviour | None = None
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)


@dataclass
class _Answer:
    text: str | None = None
    tool_name: str | None = None
    tool_arguments: str | None = None


def create_app(config: StandinConfig | None = None) -> Starlette:
    """Build the stand-in ASGI app (`POST /v1/chat/completions`, `POST /v1/responses`,
    `GET /v1/models`)."""
    config = config if config is not None else StandinConfig()
    counter = itertools.count(1)

    async def record(request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {key.lower(): value for key, value in request.headers.items()}
        recorded = RecordedRequest(request.method, request.url.path, headers, body)
        config.requests.append(recorded)
        return recorded

    def refuse(request: Request) -> Response | None:
        expected = config.require_api_key
        if expected is not None and request.headers.get("authorization") != f"Bearer {expected}":
            return _error(
                401,
                "Incorrect API key provided.",
                error_type="invalid_request_error",
                code="invalid_api_key",
            )
        if config.fail_with is not None:
            return _error(
                config.fail_with, f"The stand-in was told to fail with {config.fail_with}."
            )
        return None

    async def chat_completions(request: Request) -> Response:
        body = (await record(request)).body
        if (refused := refuse(request)) is not None:
            return refused
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(
                400, "The body must be a JSON object with a 'messages' list.", param="messages"
            )

        if config.misbehave is not None:
            return _misbehave(config.misbehave, stream=bool(body.get("stream")))
        number = next(counter)
        answer = _decide(config, body)
        model = str(body.get("model") or config.model)
        usage = _usage(body["messages"], answer)
        completion_id = f"chatcmpl-standin-{number}"
        call_id = f"call_standin_{number}"
        if body.get("stream"):
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            chunks = _stream_chunks(
                config, answer, completion_id, call_id, model, usage if include_usage else None
            )
            return StreamingResponse(chunks, media_type="text/event-stream")
        await asyncio.sleep(config.first_token_delay)
        return JSONResponse(_completion(answer, completion_id, call_id, model, usage))

    async def responses(request: Request) -> Response:
        body = (await record(request)).body
        if (refused := refuse(request)) is not None:
            return refused
        if not isinstance(body, dict) or not isinstance(body.get("input"), str | list):
            return _error(400, "The body must be a JSON object with an 'input'.", param="input")
        if config.misbehave is not None:
            return _misbehave(config.misbehave, stream=bool(body.get("stream")))
        number = next(counter)
        answer = _decide_response(config, body)
        model = str(body.get("model") or config.model)
        usage = _response_usage(body["input"], answer)
        if body.get("stream"):
            events = _response_events(config, answer, number, model, usage)
            return StreamingResponse(events, media_type="text/event-stream")
        await asyncio.sleep(config.first_token_delay)
        return JSONResponse(_response(answer, number, model, usage, _output(answer, number)))

    async def models(request: Request) -> Response:
        await record(request)
        if (refused := refuse(request)) is not None:
            return refused
        model = {"id": config.model, "object": "model", "created": 0, "owned_by": "standin"}
        return JSONResponse({"object": "list", "data": [model]})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


def _decide(config: StandinConfig, body: dict[str, Any]) -> _Answer:
    """Apply the policy to a Chat Completions request."""
    messages: list[dict[str, Any]] = [m for m in body["messages"] if isinstance(m, dict)]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    tool_outputs = [
        _content_text(m.get("content"))
        for m in messages[last_user + 1 :]
        if m.get("role") == "tool"
    ]
    offered = {
        tool["function"].get("name")
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    }
    return _policy(config, tool_outputs, offered, body.get("tool_choice"))


def _decide_response(config: StandinConfig, body: dict[str, Any]) -> _Answer:
    """Apply the policy to a Responses request: its input items, its function tools."""
    raw = body["input"]
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    items = [item for item in items if isinstance(item, dict)]
    last_user = max((i for i, m in enumerate(items) if m.get("role") == "user"), default=-1)
    tool_outputs = [
        _content_text(item.get("output"))
        for item in items[last_user + 1 :]
        if item.get("type") == "function_call_output"
    ]
    offered = {
        tool.get("name")
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and tool.get("type") == "function"
    }
    return _policy(config, tool_outputs, offered, body.get("tool_choice"))


def _policy(
    config: StandinConfig, tool_outputs: list[str], offered: set[Any], tool_choice: Any
) -> _Answer:
    """One tool call if it fits (no tool output since the user spoke), otherwise text."""
    if not tool_outputs and config.tool_call is not None and tool_choice != "none":
        # "a|b": the first of these tools that is offered.
        names, arguments = config.tool_call
        if name := next((n for n in names.split("|") if n in offered), None):
            return _Answer(tool_name=name, tool_arguments=json.dumps(arguments))

    tool_output = _truncate(tool_outputs[-1]) if tool_outputs else ""
    if config.reply is not None:
        return _Answer(text=config.reply.replace("{tool_output}", tool_output))
    if tool_outputs:
        return _Answer(text=TOOL_REPLY.replace("{tool_output}", tool_output))
    return _Answer(text=DEFAULT_REPLY)


def _misbehave(how: Misbehaviour, *, stream: bool) -> Response:
    if how == "html":
        return Response(
            "<html><body><h1>502 Bad Gateway</h1></body></html>", media_type="text/html"
        )
    if how == "empty-json":
        return JSONResponse({})
    if how == "garbage-stream" and stream:
        lines = ["data: this is not JSON\n\n", 'data: {"choices": 7}\n\n', "data: [DONE]\n\n"]
        return StreamingResponse(iter(lines), media_type="text/event-stream")
    if how == "garbage-stream":
        return Response("this is not JSON", media_type="application/json")

    async def cut_off() -> AsyncIterator[str]:
        choice = {"index": 0, "delta": {"role": "assistant", "content": "Half an"}}
        yield _event(_chunk("chatcmpl-cut", int(time.time()), "standin", [choice]))
        raise ConnectionAbortedError("the stand-in cut the stream off, as it was told to")

    return StreamingResponse(cut_off(), media_type="text/event-stream")


def _error(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> JSONResponse:
    """An error in OpenAI's body shape; `x-should-retry: false` so clients fail fast."""
    if error_type is None:
        error_type = "server_error" if status >= 500 else "invalid_request_error"
    error = {"message": message, "type": error_type, "param": param, "code": code}
    return JSONResponse({"error": error}, status_code=status, headers={"x-should-retry": "false"})


def _completion(
    answer: _Answer, completion_id: str, call_id: str, model: str, usage: dict[str, Any]
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
    if answer.tool_name is not None:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": answer.tool_name, "arguments": answer.tool_arguments},
            }
        ]
    finish_reason = "stop" if answer.tool_name is None else "tool_calls"
    choice = {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage,
    }


async def _stream_chunks(
    config: StandinConfig,
    answer: _Answer,
    completion_id: str,
    call_id: str,
    model: str,
    usage: dict[str, Any] | None,
) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return _event(_chunk(completion_id, created, model, [choice]))

    await asyncio.sleep(config.first_token_delay)
    if answer.tool_name is not None:
        call = {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": answer.tool_name, "arguments": ""},
        }
        yield chunk({"role": "assistant", "content": None, "tool_calls": [call]})
        pieces = _split_arguments(answer.tool_arguments or "")
        finish_reason = "tool_calls"
    else:
        yield chunk({"role": "assistant", "content": ""})
        pieces = _WORD_BOUNDARY.split(answer.text or "")
        finish_reason = "stop"

    for piece in pieces:
        await asyncio.sleep(config.chunk_delay)
        if answer.tool_name is not None:
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        else:
            yield chunk({"content": piece})
    yield chunk({}, finish_reason)
    if usage is not None:
        yield _event({**_chunk(completion_id, created, model, []), "usage": usage})
    yield "data: [DONE]\n\n"


def _chunk(
    completion_id: str, created: int, model: str, choices: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _split_arguments(arguments: str) -> list[str]:
    # Real servers stream arguments in fragments; two is enough to exercise reassembly.
    middle = len(arguments) // 2
    return [part for part in (arguments[:middle], arguments[middle:]) if part]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else json.dumps(content)


def _truncate(text: str) -> str:
    return text if len(text) <= TOOL_OUTPUT_LIMIT else text[: TOOL_OUTPUT_LIMIT - 1] + "…"


def _usage(messages: list[Any], answer: _Answer) -> dict[str, Any]:
    # Words stand in for tokens: deterministic, and enough to see usage flow through.
    prompt_tokens = sum(
        len(_content_text(m.get("content")).split()) for m in messages if isinstance(m, dict)
    )
    output = answer.text if answer.tool_name is None else answer.tool_arguments
    completion_tokens = max(len((output or "").split()), 1)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _output(answer: _Answer, number: int) -> list[dict[str, Any]]:
    """The Responses API's output items of an answer, complete."""
    if answer.tool_name is not None:
        return [
            {
                "type": "function_call",
                "id": f"fc_standin_{number}",
                "call_id": f"call_standin_{number}",
                "name": answer.tool_name,
                "arguments": answer.tool_arguments or "",
                "status": "completed",
            }
        ]
    text = {"type": "output_text", "text": answer.text or "", "annotations": [], "logprobs": []}
    return [
        {
            "type": "message",
            "id": f"msg_standin_{number}",
            "role": "assistant",
            "status": "completed",
            "content": [text],
        }
    ]


def _response(
    answer: _Answer,
    number: int,
    model: str,
    usage: dict[str, Any] | None,
    output: list[dict[str, Any]],
    status: str = "completed",
) -> dict[str, Any]:
    return {
        "id": f"resp_standin_{number}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "usage": usage,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": None,
        "top_p": None,
    }


async def _response_events(
    config: StandinConfig, answer: _Answer, number: int, model: str, usage: dict[str, Any]
) -> AsyncIterator[str]:
    """The events OpenAI's Responses API streams: the response created, each output item
    added, its text or its arguments in pieces, the item done, the response completed."""
    sequence = itertools.count()

    def sse(kind: str, **data: Any) -> str:
        payload = {"type": kind, "sequence_number": next(sequence), **data}
        return f"event: {kind}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"

    [item] = _output(answer, number)
    yield sse(
        "response.created", response=_response(answer, number, model, None, [], "in_progress")
    )
    await asyncio.sleep(config.first_token_delay)
    if answer.tool_name is not None:
        added = {**item, "arguments": "", "status": "in_progress"}
        yield sse("response.output_item.added", output_index=0, item=added)
        for piece in _split_arguments(answer.tool_arguments or ""):
            await asyncio.sleep(config.chunk_delay)
            yield sse(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=0,
                delta=piece,
            )
        yield sse(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=0,
            arguments=item["arguments"],
        )
    else:
        text = item["content"][0]
        yield sse(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "content": []},
        )
        yield sse(
            "response.content_part.added",
            item_id=item["id"],
            output_index=0,
            content_index=0,
            part={**text, "text": ""},
        )
        for piece in _WORD_BOUNDARY.split(answer.text or ""):
            await asyncio.sleep(config.chunk_delay)
            yield sse(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=0,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        yield sse(
            "response.output_text.done",
            item_id=item["id"],
            output_index=0,
            content_index=0,
            text=text["text"],
            logprobs=[],
        )
        yield sse(
            "response.content_part.done",
            item_id=item["id"],
            output_index=0,
            content_index=0,
            part=text,
        )
    yield sse("response.output_item.done", output_index=0, item=item)
    yield sse("response.completed", response=_response(answer, number, model, usage, [item]))


def _response_usage(raw_input: Any, answer: _Answer) -> dict[str, Any]:
    """Usage as the Responses API counts it (words stand in for tokens)."""
    items = [{"content": raw_input}] if isinstance(raw_input, str) else raw_input
    words = sum(
        len(_content_text(item.get("content", item.get("output"))).split())
        for item in items
        if isinstance(item, dict)
    )
    output = answer.text if answer.tool_name is None else answer.tool_arguments
    produced = max(len((output or "").split()), 1)
    return {
        "input_tokens": words,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": produced,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": words + produced,
    }


@contextmanager
def run_standin(
    config: StandinConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve the stand-in in a background thread; yield its base URL (`http://…/v1`).

    `port=0` picks a free port. The server stops when the block exits.
    """
    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Binding here, not in uvicorn, hands the free port back without a race.
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="openai-standin", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the OpenAI stand-in server did not start")
            time.sleep(0.01)
        yield f"http://{host}:{bound_port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()


def main(argv: list[str] | None = None) -> None:
    """Command line: serve the stand-in until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m course_shared.openai_standin",
        description="A local OpenAI-compatible server with a predictable policy.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--model", default="standin", help="the id GET /v1/models lists")
    parser.add_argument("--reply", help='the text answer; "{tool_output}" quotes the tool')
    parser.add_argument(
        "--tool-call", metavar="NAME", help="call this tool when offered (a|b: the first offered)"
    )
    parser.add_argument(
        "--tool-arguments", default="{}", metavar="JSON", help="arguments of --tool-call"
    )
    parser.add_argument("--first-token-delay", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--chunk-delay", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--api-key", help="require `Authorization: Bearer API_KEY`")
    parser.add_argument("--fail-with", type=int, metavar="STATUS", help="answer every request so")
    parser.add_argument("--misbehave", choices=MISBEHAVIOURS, help="break every answer this way")
    parser.add_argument(
        "--quiet", action="store_true", help="log warnings only, not every request"
    )
    args = parser.parse_args(argv)

    tool_arguments = json.loads(args.tool_arguments)
    if not isinstance(tool_arguments, dict):
        parser.error("--tool-arguments must be a JSON object")
    config = StandinConfig(
        tool_call=(args.tool_call, tool_arguments) if args.tool_call else None,
        reply=args.reply,
        model=args.model,
        first_token_delay=args.first_token_delay,
        chunk_delay=args.chunk_delay,
        require_api_key=args.api_key,
        fail_with=args.fail_with,
        misbehave=args.misbehave,
    )
    print(f"OpenAI stand-in: OPENAI_BASE_URL=http://{args.host}:{args.port}/v1")
    log_level = "warning" if args.quiet else "info"
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=log_level)


if __name__ == "__main__":
    main()
