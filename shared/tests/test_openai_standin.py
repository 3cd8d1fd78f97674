"""The stand-in answers the real OpenAI client, and the Agents SDK through it."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from course_shared.openai_standin import (
    DEFAULT_REPLY,
    Misbehaviour,
    StandinConfig,
    create_app,
    main,
    run_standin,
)
from course_shared.sse import parse_sse

API_KEY = "test-key"

LIST_TASKS_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "list_tasks",
        "description": "List the user's tasks.",
        "parameters": {"type": "object", "properties": {}},
    },
}

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def config() -> StandinConfig:
    return StandinConfig(tool_call=("list_tasks", {"status": "pending"}))


@pytest.fixture
def base_url(config: StandinConfig) -> Iterator[str]:
    with run_standin(config) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[AsyncOpenAI]:
    # No retries: an error status should surface at once, not after back-off.
    async with AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0) as client:
        yield client


@pytest.mark.anyio
async def test_text_reply(client: AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-test", messages=HELLO)

    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-test"
    assert completion.usage is not None and completion.usage.total_tokens > 0


@pytest.mark.anyio
async def test_streamed_chunks_concatenate_to_the_reply(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-test", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1
    assert "".join(pieces) == DEFAULT_REPLY
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


@pytest.mark.anyio
async def test_stream_ends_with_done(base_url: str) -> None:
    body = {"model": "gpt-test", "messages": HELLO, "stream": True}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{base_url}/chat/completions", json=body)

    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[-1].data == "[DONE]"
    assert all(event.json()["object"] == "chat.completion.chunk" for event in events[:-1])


@pytest.mark.anyio
async def test_tool_call_then_text_after_the_tool_result(client: AsyncOpenAI) -> None:
    first = await client.chat.completions.create(
        model="gpt-test", messages=HELLO, tools=[LIST_TASKS_TOOL]
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "list_tasks"
    assert json.loads(call.function.arguments) == {"status": "pending"}

    second = await client.chat.completions.create(
        model="gpt-test",
        tools=[LIST_TASKS_TOOL],
        messages=[
            *HELLO,
            message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "1. buy milk"},
        ],
    )

    assert second.choices[0].message.content == "Here is what I found: 1. buy milk"


@pytest.mark.anyio
async def test_streamed_tool_call_arguments_reassemble(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-test", messages=HELLO, tools=[LIST_TASKS_TOOL], stream=True
    )
    deltas = [
        call
        async for chunk in stream
        for call in (chunk.choices[0].delta.tool_calls or [] if chunk.choices else [])
    ]

    assert deltas[0].function is not None and deltas[0].function.name == "list_tasks"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"status": "pending"}


@pytest.mark.anyio
async def test_no_tool_call_when_the_tool_is_not_offered(client: AsyncOpenAI) -> None:
    other_tool: ChatCompletionToolParam = {
        "type": "function",
        "function": {"name": "delete_task", "parameters": {"type": "object"}},
    }

    completion = await client.chat.completions.create(
        model="gpt-test", messages=HELLO, tools=[other_tool]
    )

    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].message.content == DEFAULT_REPLY


@pytest.mark.anyio
async def test_configured_reply_quotes_the_tool_output(
    config: StandinConfig, client: AsyncOpenAI
) -> None:
    config.reply = "Done: {tool_output}"
    messages: list[ChatCompletionMessageParam] = [
        *HELLO,
        {"role": "tool", "tool_call_id": "call_1", "content": "x" * 600},
    ]

    completion = await client.chat.completions.create(model="gpt-test", messages=messages)

    content = completion.choices[0].message.content
    assert content is not None and content.startswith("Done: xxx")
    assert len(content) < 600


@pytest.mark.anyio
async def test_wrong_api_key_is_401(config: StandinConfig, client: AsyncOpenAI) -> None:
    config.require_api_key = "the-right-key"

    with pytest.raises(openai.AuthenticationError) as caught:
        await client.chat.completions.create(model="gpt-test", messages=HELLO)

    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


@pytest.mark.anyio
async def test_right_api_key_is_accepted(config: StandinConfig, client: AsyncOpenAI) -> None:
    config.require_api_key = API_KEY

    models = await client.models.list()

    assert [model.id for model in models.data] == ["standin"]


@pytest.mark.anyio
async def test_fail_with_500_raises_internal_server_error(
    config: StandinConfig, client: AsyncOpenAI
) -> None:
    config.fail_with = 500

    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="gpt-test", messages=HELLO)

    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"


BODY = {"model": "gpt-test", "messages": HELLO}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("misbehaviour", "stream", "content_type", "starts_with"),
    [
        ("html", False, "text/html", b"<html>"),
        ("html", True, "text/html", b"<html>"),
        ("empty-json", True, "application/json", b"{}"),
        ("garbage-stream", True, "text/event-stream", b"data: this is not JSON"),
        ("garbage-stream", False, "application/json", b"this is not JSON"),
    ],
)
async def test_a_misbehaving_standin_answers_200_with_what_no_client_can_use(
    config: StandinConfig,
    base_url: str,
    misbehaviour: Misbehaviour,
    stream: bool,
    content_type: str,
    starts_with: bytes,
) -> None:
    config.misbehave = misbehaviour

    async with httpx.AsyncClient() as http:
        response = await http.post(f"{base_url}/chat/completions", json=BODY | {"stream": stream})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert response.content.startswith(starts_with)


@pytest.mark.anyio
async def test_a_cut_stream_ends_before_its_end(config: StandinConfig, base_url: str) -> None:
    config.misbehave = "cut-stream"

    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            async with http.stream(
                "POST", f"{base_url}/chat/completions", json=BODY | {"stream": True}
            ) as response:
                async for _ in response.aiter_bytes():
                    pass


@pytest.mark.anyio
async def test_requests_are_recorded(config: StandinConfig, client: AsyncOpenAI) -> None:
    await client.chat.completions.create(model="gpt-test", messages=HELLO, tools=[LIST_TASKS_TOOL])

    [recorded] = config.requests
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == f"Bearer {API_KEY}"
    assert recorded.body["model"] == "gpt-test"
    assert recorded.body["tools"][0]["function"]["name"] == "list_tasks"


@pytest.mark.anyio
async def test_invalid_body_is_400(base_url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{base_url}/chat/completions", content=b"not json")

    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.anyio
async def test_hundred_concurrent_streams_are_all_answered(
    config: StandinConfig, client: AsyncOpenAI
) -> None:
    # How fast they are served is the benchmark's business (lesson 13), not a test's.
    config.first_token_delay = 0.05

    async def chat() -> str:
        stream = await client.chat.completions.create(
            model="gpt-test", messages=HELLO, stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    replies = await asyncio.gather(*(chat() for _ in range(100)))

    assert replies == [DEFAULT_REPLY] * 100


@function_tool
def list_tasks() -> str:
    """List the user's tasks."""
    return "1. buy milk (pending)"


@pytest.fixture
async def agent(base_url: str) -> AsyncIterator[Agent]:
    set_tracing_disabled(True)
    async with AsyncOpenAI(base_url=base_url, api_key=API_KEY) as openai_client:
        model = OpenAIChatCompletionsModel(model="standin", openai_client=openai_client)
        yield Agent(
            name="TaskManager", instructions="Help with tasks.", model=model, tools=[list_tasks]
        )


@pytest.mark.anyio
async def test_agent_runs_the_tool_through_the_standin(
    agent: Agent, config: StandinConfig
) -> None:
    result = await Runner.run(agent, "what is still pending?")

    assert "buy milk" in result.final_output
    assert len(config.requests) == 2
    assert config.requests[1].body["messages"][-1]["role"] == "tool"


@pytest.mark.anyio
async def test_agent_streams_through_the_standin(agent: Agent) -> None:
    result = Runner.run_streamed(agent, "what is still pending?")
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]

    assert "".join(deltas) == result.final_output
    assert "buy milk" in result.final_output


# --- the Responses API: the path OpenAI users take (OpenAIResponsesModel) -------------------

RESPONSES_TOOL: Any = {
    "type": "function",
    "name": "list_tasks",
    "description": "List the user's tasks.",
    "parameters": {"type": "object", "properties": {}},
}


@pytest.mark.anyio
async def test_responses_streams_the_events_openai_streams(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(model="gpt-test", input="hello", stream=True)
    events = [event async for event in stream]

    kinds = [event.type for event in events]
    assert kinds[:3] == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == DEFAULT_REPLY
    assert [event.sequence_number for event in events] == list(range(len(events)))
    completed = events[-1].response  # type: ignore[union-attr]
    assert completed.output_text == DEFAULT_REPLY
    assert completed.usage is not None and completed.usage.total_tokens > 0


@pytest.mark.anyio
async def test_responses_calls_a_tool_then_answers_from_its_output(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(
        model="gpt-test", input="what is pending?", tools=[RESPONSES_TOOL], stream=True
    )
    events = [event async for event in stream]
    pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    [call] = events[-1].response.output  # type: ignore[union-attr]
    assert call.type == "function_call" and call.name == "list_tasks"
    assert json.loads("".join(pieces)) == json.loads(call.arguments) == {"status": "pending"}

    answer = await client.responses.create(
        model="gpt-test",
        tools=[RESPONSES_TOOL],
        input=[
            {"role": "user", "content": "what is pending?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "[]"},
        ],
    )
    assert answer.output_text == "Here is what I found: []"


def test_the_sdks_responses_model_runs_a_tool_through_it(base_url: str) -> None:
    set_tracing_disabled(True)

    @function_tool
    def list_tasks(status: str) -> str:
        """List the user's tasks."""
        return json.dumps([{"id": 1, "title": "Buy milk", "status": status}])

    async def run() -> tuple[str, list[str]]:
        async with AsyncOpenAI(base_url=base_url, api_key=API_KEY) as client:
            model = OpenAIResponsesModel(model="gpt-test", openai_client=client)
            agent = Agent(name="Reporter", tools=[list_tasks], model=model)
            result = Runner.run_streamed(agent, "what is pending?")
            names = [
                e.name async for e in result.stream_events() if e.type == "run_item_stream_event"
            ]
            return str(result.final_output), names

    reply, names = asyncio.run(run())

    assert names == ["tool_called", "tool_output", "message_output_created"]
    assert reply == 'Here is what I found: [{"id": 1, "title": "Buy milk", "status": "pending"}]'


def test_create_app_serves_without_a_thread() -> None:
    from starlette.testclient import TestClient

    with TestClient(create_app()) as http:
        response = http.get("/v1/models")

    assert response.json()["data"][0]["id"] == "standin"


def test_command_line_rejects_bad_tool_arguments() -> None:
    with pytest.raises(SystemExit):
        main(["--tool-call", "list_tasks", "--tool-arguments", "[]"])


@pytest.mark.anyio
async def test_the_first_offered_of_several_tools_is_called(
    config: StandinConfig, client: AsyncOpenAI
) -> None:
    config.tool_call = ("transfer_to_reporter|list_tasks", {})

    completion = await client.chat.completions.create(
        model="gpt-test", messages=HELLO, tools=[LIST_TASKS_TOOL]
    )

    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.name == "list_tasks"  # type: ignore[union-attr]
