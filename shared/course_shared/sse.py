"""Read Server-Sent Events in tests, the way a browser's `EventSource` does.

Parsing follows the WHATWG rules ("Interpreting an event stream"): lines end in CRLF,
LF or CR; `field: value` (one space after the colon is dropped); several `data:` lines
join with "\\n"; a blank line dispatches the event, and only when it has data; lines
starting with ":" are comments; an event the stream ends in the middle of is dropped.

    events = parse_sse(response.text)
    assert events[0].event == "delta" and events[0].json() == {"text": "Hi"}

    with client.stream("GET", "/tasks/events") as response:
        for event in iter_sse(response.iter_lines()):
            ...  # break whenever the test has seen enough

Comments are skipped unless `include_comments=True`: then each comment line comes out
as `ServerSentEvent(event="comment", data=<its text>)`, in stream order, so a test can
see keep-alives (`: ping` arrives as `data="ping"`).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

COMMENT = "comment"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class ServerSentEvent:
    """One dispatched event.

    `id` is the stream's last event id when it was dispatched (it carries over to later
    events, as `EventSource.lastEventId` does); `retry` is set only by its own block.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The data, decoded as JSON."""
        return json.loads(self.data)


class _Decoder:
    """Turns lines (without their line endings) into events, one line at a time."""

    def __init__(self, include_comments: bool) -> None:
        self.include_comments = include_comments
        self.first_line = True
        self.last_event_id: str | None = None
        self._reset()

    def _reset(self) -> None:
        self.event = ""
        self.data: list[str] = []
        self.retry: int | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        if self.first_line:
            self.first_line = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            if self.include_comments:
                return ServerSentEvent(event=COMMENT, data=line[1:].removeprefix(" "))
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        # A block without data is no event; its event name is dropped with it.
        if not self.data:
            self._reset()
            return None
        event = ServerSentEvent(
            event=self.event or "message",
            data="\n".join(self.data),
            id=self.last_event_id,
            retry=self.retry,
        )
        self._reset()
        return event


def parse_sse(text: str, *, include_comments: bool = False) -> list[ServerSentEvent]:
    """All events of a complete `text/event-stream` body."""
    # The last piece is either empty or a line the stream never finished: not a line.
    lines = _LINE_BREAK.split(text)[:-1]
    return list(iter_sse(lines, include_comments=include_comments))


def iter_sse(lines: Iterable[str], *, include_comments: bool = False) -> Iterator[ServerSentEvent]:
    """Events from lines as they arrive, e.g. `response.iter_lines()`; stop any time."""
    decoder = _Decoder(include_comments)
    for item in lines:
        for line in _lines_of(item):
            if (event := decoder.feed(line)) is not None:
                yield event


async def aiter_sse(
    lines: AsyncIterable[str], *, include_comments: bool = False
) -> AsyncIterator[ServerSentEvent]:
    """Events from async lines, e.g. `response.aiter_lines()` of an `httpx.AsyncClient`."""
    decoder = _Decoder(include_comments)
    async for item in lines:
        for line in _lines_of(item):
            if (event := decoder.feed(line)) is not None:
                yield event


def _lines_of(item: str) -> list[str]:
    # An item is normally one line; tolerate a trailing line ending (file iteration keeps
    # it) and several lines in one item.
    for ending in ("\r\n", "\n", "\r"):
        if item.endswith(ending):
            item = item[: -len(ending)]
            break
    return _LINE_BREAK.split(item)
