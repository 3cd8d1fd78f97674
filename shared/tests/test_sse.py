"""The SSE test helpers parse the wire format as a browser's EventSource does."""

import io
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from course_shared.sse import COMMENT, ServerSentEvent, aiter_sse, iter_sse, parse_sse

E = ServerSentEvent

WIRE_TEXTS = [
    pytest.param("data: hello\n\n", [E(data="hello")], id="one event"),
    pytest.param("data:hello\n\n", [E(data="hello")], id="no space after colon"),
    pytest.param("data:  two\n\n", [E(data=" two")], id="only one space removed"),
    pytest.param("data: a\ndata: b\n\n", [E(data="a\nb")], id="multi-line data"),
    pytest.param("data\n\n", [E(data="")], id="field without colon"),
    pytest.param("data:\n\n", [E(data="")], id="empty data still dispatches"),
    pytest.param("event: delta\ndata: {}\n\n", [E(event="delta", data="{}")], id="event name"),
    pytest.param(
        "event: delta\n\ndata: x\n\n", [E(data="x")], id="event name without data is dropped"
    ),
    pytest.param(
        "id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n",
        [E(data="a", id="1"), E(data="b", id="1"), E(data="c", id="2")],
        id="last event id carries over",
    ),
    pytest.param("id: 1\n\ndata: a\n\n", [E(data="a", id="1")], id="id without data"),
    pytest.param("id: a\0b\ndata: x\n\n", [E(data="x")], id="id with NULL ignored"),
    pytest.param(
        "retry: 3000\ndata: a\n\ndata: b\n\n",
        [E(data="a", retry=3000), E(data="b")],
        id="retry belongs to its block",
    ),
    pytest.param("retry: soon\ndata: a\n\n", [E(data="a")], id="retry not digits ignored"),
    pytest.param(": ping\n\ndata: a\n\n", [E(data="a")], id="comments ignored"),
    pytest.param("foo: bar\ndata: a\n\n", [E(data="a")], id="unknown field ignored"),
    pytest.param(
        "data: a\r\n\r\ndata: b\r\rdata: c\n\n",
        [E(data="a"), E(data="b"), E(data="c")],
        id="CRLF, CR and LF",
    ),
    pytest.param("data: a: b\n\n", [E(data="a: b")], id="colon in value"),
    pytest.param("\ufeffdata: a\n\n", [E(data="a")], id="byte order mark"),
    pytest.param("data: a\n\ndata: b\n", [E(data="a")], id="unfinished last event dropped"),
    pytest.param("data: a\n\ndata: b", [E(data="a")], id="unterminated last line dropped"),
    pytest.param("", [], id="empty stream"),
]


@pytest.mark.parametrize(("text", "expected"), WIRE_TEXTS)
def test_parse_sse(text: str, expected: list[ServerSentEvent]) -> None:
    assert parse_sse(text) == expected


@pytest.mark.parametrize(("text", "expected"), WIRE_TEXTS)
def test_iter_sse_over_httpx_lines_matches_parse_sse(
    text: str, expected: list[ServerSentEvent]
) -> None:
    response = httpx.Response(200, content=text.encode())

    events = list(iter_sse(response.iter_lines()))

    # httpx hands over an unterminated last line too; it never completes an event.
    assert events == expected


def test_json_decodes_data() -> None:
    [event] = parse_sse('event: done\ndata: {"reply": "ok", "usage": {"requests": 1}}\n\n')

    assert event.json() == {"reply": "ok", "usage": {"requests": 1}}


def test_comments_included_on_request() -> None:
    text = ": ping\n\nevent: delta\n:inside\ndata: a\n\n"

    events = parse_sse(text, include_comments=True)

    assert events == [
        E(event=COMMENT, data="ping"),
        E(event=COMMENT, data="inside"),
        E(event="delta", data="a"),
    ]


def test_iter_sse_stops_reading_when_the_caller_stops() -> None:
    read: list[str] = []

    def lines() -> Iterator[str]:
        for number in range(1000):
            for line in (f"id: {number}", "data: x", ""):
                read.append(line)
                yield line

    events = iter_sse(lines())
    first_two = [next(events), next(events)]

    assert [event.id for event in first_two] == ["0", "1"]
    assert len(read) == 6


def test_iter_sse_accepts_lines_with_their_endings() -> None:
    events = list(iter_sse(io.StringIO("event: a\ndata: 1\n\ndata: 2\r\n\r\n")))

    assert events == [E(event="a", data="1"), E(data="2")]


@pytest.mark.anyio
async def test_aiter_sse() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in ["event: delta", "data: Hel", "", ": ping", "event: delta", "data: lo", ""]:
            yield line

    events = [event async for event in aiter_sse(lines())]

    assert [(event.event, event.data) for event in events] == [("delta", "Hel"), ("delta", "lo")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
