"""Server-sent events: a pure, incremental decoder (bytes in, raw events out).

The decoder follows the event stream interpretation rules of the HTML living
standard (section 9.2.6), with the tolerances of docs/streaming.md, "Decoding":

* input is arbitrary ``bytes`` chunks: split points may fall anywhere, including
  inside a multi-byte UTF-8 character, inside the leading byte order mark, or
  between the ``\\r`` and ``\\n`` of a line end;
* lines end with ``\\n``, ``\\r\\n`` or ``\\r``; one leading UTF-8 BOM is stripped;
  invalid UTF-8 is replaced with U+FFFD;
* a line starting with ``:`` is a comment; ``field:value`` loses exactly one
  leading space of the value; a line without ``:`` is a field with an empty value;
* ``event`` sets the event name, ``data`` lines are joined with ``\\n``, ``id``
  sets the event id unless it contains NUL, ``retry`` (ASCII digits only) sets
  the reconnection time; unknown fields are ignored;
* a blank line commits the last event id and dispatches the event if a ``data``
  or ``event`` field was seen (the standard requires data; we also dispatch
  data-less named events), then always clears the event fields;
* an event without an ``id`` field is dispatched with ``id=""``, but
  :attr:`SSEDecoder.last_event_id` keeps the last id for ``Last-Event-ID`` on
  reconnects; an event without an ``event`` field has ``event=""``;
* at the end of the stream an unfinished event is discarded (:meth:`SSEDecoder.reset`).

Filtering of unknown event names, mapping to ``ServerSentEvent`` and reconnects
belong to the stream layer; :class:`SeenIds` helps it drop replayed events.

Speed matters (this runs for every LLM token), so :meth:`SSEDecoder.feed`
decodes each chunk to ``str`` once and normalises line ends only when a ``\r``
is present. Runs of simple blocks (Replicate's ``event``/``id``/``data`` block, or
``[event][id]data``) are cut out by one regular expression split and turned into
events in C (``map`` over ``zip``); anything else is walked line by line in one
tight loop with the event state held in locals. Both paths give the same events
for every input (see tests/unit/test_sse.py); benchmarks/bench_sse.py measures.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from itertools import repeat
from typing import NamedTuple

__all__ = ["RawEvent", "SSEDecoder", "SeenIds", "aiter_events", "iter_events"]

_BOM = codecs.BOM_UTF8
_utf8_decode = codecs.utf_8_decode

# Replicate's usual event block, at a line start; ``split`` yields (gap, event, id, data)
# per block, then the text after the last block. Only used on NUL-free text, so the
# id is valid; ``.`` does not match ``\n`` and the text has no other line ends left.
_split_usual = re.compile(r"^event: (.*)\nid: (.*)\ndata: (.*)\n\n", re.MULTILINE).split
# The same with ``event`` and ``id`` optional (an absent one splits out as None); a bit
# slower, so only tried when the usual form does not fit the whole text.
_split_simple = re.compile(r"^(?:event: (.*)\n|)(?:id: (.*)\n|)data: (.*)\n\n", re.MULTILINE).split


# After a chunk that the fast path did not fit, this many chunks skip trying it.
_SKIP_AFTER_MISS = 8


def _block(event: str | None, event_id: str | None, data: str) -> str:
    """The lines of a simple block, to interpret one by one."""
    lines = "" if event is None else f"event: {event}\n"
    if event_id is not None:
        lines += f"id: {event_id}\n"
    return f"{lines}data: {data}\n\n"


class RawEvent(NamedTuple):
    """One dispatched event, before any interpretation of its name or data.

    ``event`` is ``""`` when the block had no ``event`` field, ``id`` is ``""``
    when it had no (valid) ``id`` field, ``retry`` is the valid ``retry`` value
    sent in this block (milliseconds) or ``None``.
    """

    event: str
    data: str
    id: str
    retry: int | None


# Building the tuple through ``tuple.__new__`` skips NamedTuple's Python-level
# ``__new__``; the result is an ordinary RawEvent instance.
_new_event = tuple.__new__


class SSEDecoder:
    """An incremental decoder of a ``text/event-stream`` body.

    Feed it the body's chunks as they arrive with :meth:`feed`, which returns the
    events completed by that chunk. After a connection ends (cleanly or not),
    call :meth:`reset` before feeding the body of a new connection: it discards
    the unfinished line and event, as the standard requires at end of stream,
    and keeps :attr:`last_event_id` and :attr:`retry`.

    Attributes:
        last_event_id: The id committed by the last complete event block (an
            ``id:`` field followed by a blank line); ``""`` if none. Send it as
            ``Last-Event-ID`` when reconnecting (if non-empty).
        retry: The last valid reconnection time sent by the server, in
            milliseconds, or ``None`` if the server never sent one.
    """

    __slots__ = (
        "_cr",
        "_data",
        "_data_more",
        "_event",
        "_event_id",
        "_event_retry",
        "_misses",
        "_raw",
        "_start",
        "_tail",
        "last_event_id",
        "retry",
    )

    def __init__(self, last_event_id: str = "", retry: int | None = None) -> None:
        """Create a decoder, optionally resuming with a known id and retry value."""
        if not isinstance(last_event_id, str):
            raise TypeError(f"last_event_id must be a str, got {type(last_event_id).__name__}")
        if retry is not None and (type(retry) is not int or retry < 0):
            raise ValueError(f"retry must be None or an int >= 0, got {retry!r}")
        self.last_event_id: str = last_event_id
        self.retry: int | None = retry
        self._reset_connection()

    def _reset_connection(self) -> None:
        # Byte level: undecoded bytes (a partial UTF-8 character or BOM prefix),
        # whether the BOM check is still due, whether the last text ended in CR.
        self._raw = b""
        self._start = True
        self._cr = False
        # Text level: pieces of the unfinished line; chunks left to take line by line.
        self._tail: list[str] = []
        self._misses = 0
        # The event being built: name, first data line, further data lines, id, retry.
        self._event: str | None = None
        self._data: str | None = None
        self._data_more: list[str] | None = None
        self._event_id: str | None = None
        self._event_retry: int | None = None

    def reset(self) -> None:
        """End the current connection's stream: drop the unfinished line and event.

        Per the standard, an event not terminated by a blank line before the end
        of the stream is never dispatched. :attr:`last_event_id` and
        :attr:`retry` survive, and a new stream may start with a BOM again.
        """
        self._reset_connection()

    # ``close`` reads naturally at the end of a body.
    close = reset

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[RawEvent]:
        """Decode one chunk of the body and return the events it completes (maybe none)."""
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        if self._raw:
            chunk = self._raw + chunk
            self._raw = b""
        if self._start:
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._raw = chunk  # too short to tell whether it is a BOM
                return []
            self._start = False
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        text, used = _utf8_decode(chunk, "replace", False)
        if used != len(chunk):
            self._raw = chunk[used:]  # an incomplete UTF-8 sequence
        if not text:
            return []
        if self._cr:
            # The previous chunk ended with CR: a LF right after it is the same line end.
            self._cr = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if "\r" in text:
            if text[-1] == "\r":
                self._cr = True
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        tail = self._tail
        end = text.rfind("\n") + 1
        if not end:
            tail.append(text)
            return []
        if tail:
            tail.append(text[:end])
            body = "".join(tail)
            tail.clear()
        else:
            body = text[:end]
        if end != len(text):
            tail.append(text[end:])
        return self._text(body)

    def _text(self, text: str) -> list[RawEvent]:
        """Interpret complete lines (``text`` ends with a line end); return the events.

        Fast path: when ``text`` is a run of simple blocks (Replicate's
        ``event: E\\nid: I\\ndata: D\\n\\n``, else ``[event: E\\n][id: I\\n]data: D\\n\\n``),
        possibly between the end of an earlier event and the start of a later one,
        one regular expression split cuts the blocks out and they become events
        without a Python-level loop. Anything else goes through :meth:`_lines`, the
        general line-by-line interpreter.
        """
        if self._misses:
            # The fast path recently did not fit this stream: do not pay for trying.
            self._misses -= 1
            return self._lines(text)
        if "\0" in text:
            return self._lines(text)
        loose = False
        parts = _split_usual(text)
        rest = parts.pop()
        if not parts or any(parts[4::4]):
            # Not only Replicate's usual blocks: try the looser form.
            loose = True
            parts = _split_simple(text)
            rest = parts.pop()
            if not parts or any(parts[4::4]):
                # No simple blocks, or something else between two of them: take the
                # whole text line by line, and skip the fast path for a few chunks.
                self._misses = _SKIP_AFTER_MISS
                return self._lines(text)
        out = self._lines(parts[0]) if parts[0] else []
        if self._dirty():
            # The first block continues an event begun before it.
            out += self._lines(_block(parts[1], parts[2], parts[3]))
            del parts[:4]
        if parts:
            events = parts[1::4]
            ids = parts[2::4]
            last_id: str | None = ids[-1]
            if loose:
                # Absent fields come out of the split as None.
                if None in events:
                    events = [e or "" for e in events]
                if None in ids:
                    last_id = next((i for i in reversed(ids) if i is not None), None)
                    ids = [i or "" for i in ids]
            out += map(
                _new_event,
                repeat(RawEvent),
                zip(events, parts[3::4], ids, repeat(None)),
            )
            if last_id is not None:
                self.last_event_id = last_id
        if rest:
            out += self._lines(rest)
        return out

    def _dirty(self) -> bool:
        """Whether an event is being built (a field of it was seen)."""
        return not (
            self._event is None
            and self._data is None
            and self._event_id is None
            and self._event_retry is None
        )

    def _lines(self, text: str) -> list[RawEvent]:
        """Interpret complete lines (``text`` ends with a line end) one by one."""
        lines = text.split("\n")
        lines.pop()
        out: list[RawEvent] = []
        append = out.append
        event = self._event
        data = self._data
        more = self._data_more
        event_id = self._event_id
        event_retry = self._event_retry
        for line in lines:
            if not line:
                # Blank line: commit the id, dispatch if data or event was seen, clear.
                if event_id is not None:
                    self.last_event_id = event_id
                if data is not None:
                    if more is not None:
                        data = "\n".join(more)
                        more = None
                    append(_new_event(RawEvent, (event or "", data, event_id or "", event_retry)))
                elif event is not None:
                    append(_new_event(RawEvent, (event, "", event_id or "", event_retry)))
                event = data = event_id = event_retry = None
                continue
            if line[0] == ":":
                continue  # comment (also the usual keep-alive)
            name, _, value = line.partition(":")
            if value and value[0] == " ":
                value = value[1:]
            if name == "data":
                if data is None:
                    data = value
                elif more is None:
                    more = [data, value]
                else:
                    more.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                if "\0" not in value:
                    event_id = value
            elif name == "retry" and value.isdigit() and value.isascii():
                event_retry = int(value)
                self.retry = event_retry
            # Any other field is ignored.
        self._event = event
        self._data = data
        self._data_more = more
        self._event_id = event_id
        self._event_retry = event_retry
        return out

    def iter_events(self, chunks: Iterable[bytes]) -> Iterator[RawEvent]:
        """Yield the events of a whole body given as chunks, then :meth:`reset`."""
        feed = self.feed
        try:
            for chunk in chunks:
                yield from feed(chunk)
        finally:
            self.reset()

    async def aiter_events(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[RawEvent]:
        """Async twin of :meth:`iter_events`."""
        feed = self.feed
        try:
            async for chunk in chunks:
                for event in feed(chunk):
                    yield event
        finally:
            self.reset()


def iter_events(chunks: Iterable[bytes]) -> Iterator[RawEvent]:
    """Decode a whole event stream body given as byte chunks."""
    return SSEDecoder().iter_events(chunks)


def aiter_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[RawEvent]:
    """Decode a whole event stream body given as async byte chunks."""
    return SSEDecoder().aiter_events(chunks)


class SeenIds:
    """Remembers the non-empty event ids delivered on one stream (across reconnects).

    ``seen.add(event.id)`` returns ``True`` when the event should be delivered
    (its id is empty or new) and ``False`` when it is a replay to drop.
    """

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        """Start with no ids."""
        self._ids: set[str] = set()

    def add(self, event_id: str) -> bool:
        """Record ``event_id``; return whether it is empty or was not seen before."""
        if not event_id:
            return True
        ids = self._ids
        if event_id in ids:
            return False
        ids.add(event_id)
        return True

    def __contains__(self, event_id: object) -> bool:
        """Whether ``event_id`` was recorded."""
        return event_id in self._ids

    def __len__(self) -> int:
        """How many distinct non-empty ids were recorded."""
        return len(self._ids)
