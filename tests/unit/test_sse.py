"""Unit tests of the SSE decoder (``replicate._sse``): every event stream rule, every chunking."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Iterable

import pytest

from replicate._sse import RawEvent, SeenIds, SSEDecoder, aiter_events, iter_events

# --------------------------------------------------------------------------------------------
# Helpers


def ev(event: str = "", data: str = "", id: str = "", retry: int | None = None) -> RawEvent:
    return RawEvent(event, data, id, retry)


def decode(chunks: Iterable[bytes], decoder: SSEDecoder | None = None) -> list[RawEvent]:
    """Feed every chunk, collect the events, then end the stream."""
    decoder = decoder if decoder is not None else SSEDecoder()
    out: list[RawEvent] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    decoder.reset()
    return out


def one_byte_chunks(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def random_chunks(body: bytes, rng: random.Random, max_size: int = 17) -> list[bytes]:
    chunks = []
    i = 0
    while i < len(body):
        n = rng.randint(0, max_size)  # empty chunks too
        chunks.append(body[i : i + n])
        i += n
    return chunks


def all_chunkings(body: bytes, seed: int = 0) -> dict[str, list[bytes]]:
    rng = random.Random(seed)
    chunkings = {
        "whole": [body],
        "bytes": one_byte_chunks(body),
        "4KiB": [body[i : i + 4096] for i in range(0, len(body), 4096)],
    }
    for k in range(5):
        chunkings[f"random{k}"] = random_chunks(body, rng, max_size=[3, 7, 17, 64, 512][k])
    for cut in range(len(body) + 1) if len(body) <= 200 else ():
        chunkings[f"cut{cut}"] = [body[:cut], body[cut:]]
    return chunkings


def decode_everyhow(body: bytes) -> list[RawEvent]:
    """Decode ``body`` under many chunkings; assert they all agree; return the events."""
    results = {}
    states = {}
    for name, chunks in all_chunkings(body).items():
        decoder = SSEDecoder()
        results[name] = decode(chunks, decoder)
        states[name] = (decoder.last_event_id, decoder.retry)
    expected = results["whole"]
    for name, events in results.items():
        assert events == expected, f"chunking {name!r} gave different events"
        assert states[name] == states["whole"], f"chunking {name!r} gave a different state"
    return expected


# --------------------------------------------------------------------------------------------
# A plain reference implementation of the rules, written straight from the standard (and
# docs/streaming.md, "Decoding"), to compare with on generated streams.


def reference(body: bytes) -> tuple[list[RawEvent], str, int | None]:
    text = body.decode("utf-8", "replace")
    if body.startswith(b"\xef\xbb\xbf"):
        text = text[1:]
    pieces = re.split(r"\r\n|\r|\n", text)
    pieces.pop()  # an unterminated last line is never interpreted
    events: list[RawEvent] = []
    last_id = ""
    retry: int | None = None
    event = data = event_id = event_retry = None
    data_lines: list[str] = []
    for line in pieces:
        if line == "":
            if event_id is not None:
                last_id = event_id
            if data is not None or event is not None:
                events.append(
                    RawEvent(event or "", "\n".join(data_lines), event_id or "", event_retry)
                )
            event = data = event_id = event_retry = None
            data_lines = []
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "event":
            event = value
        elif name == "data":
            data = "seen"
            data_lines.append(value)
        elif name == "id":
            if "\0" not in value:
                event_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            event_retry = int(value)
            retry = event_retry
    return events, last_id, retry


# --------------------------------------------------------------------------------------------
# RawEvent and the decoder's API


def test_raw_event_is_a_small_named_tuple() -> None:
    event = RawEvent("output", "hi", "1:0", None)
    assert (event.event, event.data, event.id, event.retry) == ("output", "hi", "1:0", None)
    assert event == ("output", "hi", "1:0", None)
    assert RawEvent._fields == ("event", "data", "id", "retry")
    assert not hasattr(event, "__dict__")
    assert repr(event) == "RawEvent(event='output', data='hi', id='1:0', retry=None)"


def test_decoder_starts_empty_and_validates_its_arguments() -> None:
    decoder = SSEDecoder()
    assert decoder.last_event_id == ""
    assert decoder.retry is None
    resumed = SSEDecoder(last_event_id="7", retry=500)
    assert (resumed.last_event_id, resumed.retry) == ("7", 500)
    with pytest.raises(TypeError, match="last_event_id"):
        SSEDecoder(last_event_id=7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry"):
        SSEDecoder(retry=-1)
    with pytest.raises(ValueError, match="retry"):
        SSEDecoder(retry=1.5)  # type: ignore[arg-type]


def test_feed_returns_the_events_completed_by_each_chunk() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: output\nid: 1:0\ndata: he") == []
    assert decoder.feed(b"llo\n") == []
    assert decoder.feed(b"\n") == [ev("output", "hello", "1:0")]
    assert decoder.last_event_id == "1:0"
    assert decoder.feed(b"data: a\n\ndata: b\n\ndata: c") == [ev(data="a"), ev(data="b")]
    assert decoder.feed(b"") == []


def test_feed_accepts_bytearray_and_memoryview() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(bytearray(b"data: a\n\n")) == [ev(data="a")]
    assert decoder.feed(memoryview(b"data: b\n\n")) == [ev(data="b")]


def test_replicate_stream() -> None:
    body = (
        b"event: output\nid: 1690212292:0\ndata: Hello\n\n"
        b"event: output\nid: 1690212292:1\ndata:  world\n\n"
        b"event: logs\nid: 1690212292:2\ndata: step 1/2\n\n"
        b"event: output\nid: 1690212292:3\ndata: !\n\n"
        b"event: done\ndata: {}\n\n"
    )
    assert decode_everyhow(body) == [
        ev("output", "Hello", "1690212292:0"),
        ev("output", " world", "1690212292:1"),
        ev("logs", "step 1/2", "1690212292:2"),
        ev("output", "!", "1690212292:3"),
        ev("done", "{}", ""),
    ]


# --------------------------------------------------------------------------------------------
# Comments, keep-alives, names


def test_comment_lines_are_ignored() -> None:
    body = b": hello\nevent: output\n:another comment\ndata: x\n: still ignored: really\n\n"
    assert decode_everyhow(body) == [ev("output", "x")]


def test_keep_alives_dispatch_nothing() -> None:
    body = b":\n\n: keep-alive\n\n:ping\n\n\n\n" + b"data: after\n\n"
    assert decode_everyhow(body) == [ev(data="after")]


def test_unknown_event_names_are_passed_through() -> None:
    body = b"event: ping\ndata: {}\n\nevent: something-new\ndata: x\n\n"
    assert decode_everyhow(body) == [ev("ping", "{}"), ev("something-new", "x")]


def test_event_without_name_has_empty_name() -> None:
    assert decode_everyhow(b"data: x\n\n") == [ev("", "x")]


def test_event_field_without_data_dispatches_with_empty_data() -> None:
    # dispatched if any data or event field was seen (done events may have no data).
    assert decode_everyhow(b"event: done\n\n") == [ev("done", "")]
    assert decode_everyhow(b"event:\n\n") == [ev("", "")]


def test_empty_data_field_dispatches_an_event_with_empty_data() -> None:
    assert decode_everyhow(b"data:\n\n") == [ev(data="")]
    assert decode_everyhow(b"data\n\n") == [ev(data="")]
    assert decode_everyhow(b"data\ndata\n\n") == [ev(data="\n")]


def test_unknown_fields_are_ignored() -> None:
    body = b"foo: bar\nevent: output\nData: no\nEVENT: no\nx\ndata: yes\n\nfoo: only\n\n"
    assert decode_everyhow(body) == [ev("output", "yes")]


def test_field_names_are_case_sensitive_and_exact() -> None:
    assert decode_everyhow(b"data : x\n\n") == []  # field "data " is unknown
    assert decode_everyhow(b" data: x\n\n") == []


# --------------------------------------------------------------------------------------------
# Values


def test_one_leading_space_is_removed_from_values() -> None:
    body = b"event:output\ndata:no space\n\nevent: output\ndata:  two spaces\n\n"
    assert decode_everyhow(body) == [ev("output", "no space"), ev("output", " two spaces")]


def test_data_with_leading_double_space_keeps_one() -> None:
    assert decode_everyhow(b"data:  x\n\n") == [ev(data=" x")]
    assert decode_everyhow(b"event: output\nid: 1\ndata:  x\n\n") == [ev("output", " x", "1")]


def test_value_keeps_later_colons_and_trailing_spaces() -> None:
    body = b'data: {"a": "b:c"}  \nevent:  odd: name \n\n'
    assert decode_everyhow(body) == [ev(" odd: name ", '{"a": "b:c"}  ')]


def test_field_without_colon_has_empty_value() -> None:
    body = b"event: output\nid: 5\ndata\n\nevent\ndata: x\n\nid\ndata: y\n\n"
    decoder = SSEDecoder()
    assert decode([body], decoder) == [ev("output", "", "5"), ev("", "x"), ev("", "y")]
    assert decoder.last_event_id == ""  # "id" with no colon set it to ""


def test_multi_line_data_is_joined_with_newlines() -> None:
    body = b"event: output\ndata: one\ndata:\ndata:  three\ndata: four\n\n"
    assert decode_everyhow(body) == [ev("output", "one\n\n three\nfour")]


def test_later_event_field_wins() -> None:
    assert decode_everyhow(b"event: a\nevent: b\ndata: x\n\n") == [ev("b", "x")]


def test_invalid_utf8_is_replaced() -> None:
    assert decode_everyhow(b"data: a\xffb\xe2\x82\n\n") == [ev(data="a\ufffdb\ufffd")]


# --------------------------------------------------------------------------------------------
# Ids


def test_id_less_events_have_empty_id_but_last_event_id_persists() -> None:
    decoder = SSEDecoder()
    body = b"id: 1\ndata: a\n\ndata: b\n\nevent: done\ndata: {}\n\n"
    assert decode([body], decoder) == [ev("", "a", "1"), ev("", "b", ""), ev("done", "{}", "")]
    assert decoder.last_event_id == "1"


def test_id_with_nul_is_ignored() -> None:
    decoder = SSEDecoder()
    body = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\nevent: output\nid: x\x00\ndata: c\n\n"
    assert decode([body], decoder) == [ev("", "a", "1"), ev("", "b", ""), ev("output", "c", "")]
    assert decoder.last_event_id == "1"
    assert decode_everyhow(body) == [ev("", "a", "1"), ev("", "b", ""), ev("output", "c", "")]


def test_later_id_field_in_a_block_wins_and_nul_does_not_clear_it() -> None:
    assert decode_everyhow(b"id: 1\nid: 2\nid: 3\x00\ndata: x\n\n") == [ev("", "x", "2")]


def test_empty_id_resets_last_event_id() -> None:
    decoder = SSEDecoder()
    assert decode([b"id: 7\ndata: a\n\nid:\ndata: b\n\n"], decoder) == [
        ev("", "a", "7"),
        ev("", "b", ""),
    ]
    assert decoder.last_event_id == ""


def test_id_only_block_commits_last_event_id_without_dispatching() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 42\n") == []
    assert decoder.last_event_id == ""  # not committed before the blank line
    assert decoder.feed(b"\n") == []
    assert decoder.last_event_id == "42"


def test_unfinished_block_does_not_commit_its_id() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"event: output\nid: 1\ndata: a\n\nevent: output\nid: 2\ndata: b\n")
    assert decoder.last_event_id == "1"
    decoder.reset()
    assert decoder.last_event_id == "1"


def test_last_event_id_follows_the_fast_path() -> None:
    decoder = SSEDecoder()
    body = b"".join(b"event: output\nid: 9:%d\ndata: t%d\n\n" % (i, i) for i in range(100))
    events = decoder.feed(body)
    assert [e.id for e in events] == [f"9:{i}" for i in range(100)]
    assert decoder.last_event_id == "9:99"


# --------------------------------------------------------------------------------------------
# Retry


def test_retry_valid() -> None:
    decoder = SSEDecoder()
    body = b"retry: 3000\nevent: output\ndata: x\n\ndata: y\n\n"
    assert decode([body], decoder) == [ev("output", "x", "", 3000), ev("", "y")]
    assert decoder.retry == 3000


def test_retry_only_block_sets_reconnection_time_without_dispatching() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: 0\n\n") == []
    assert decoder.retry == 0
    assert decoder.feed(b"retry:250\n\n") == []
    assert decoder.retry == 250


@pytest.mark.parametrize(
    "value",
    [b"", b" ", b"3s", b"-1", b"+5", b"1.5", b"1_000", b" 7", b"7 ", b"\xd9\xa3", b"0x10", b"1e3"],
)
def test_retry_invalid_is_ignored(value: bytes) -> None:
    decoder = SSEDecoder(retry=1234)
    events = decode([b"retry: 9\n\nretry: " + value + b"\ndata: x\n\n"], decoder)
    assert events == [ev(data="x", retry=None)]
    assert decoder.retry == 9


def test_retry_is_cleared_after_each_event() -> None:
    body = b"retry: 10\ndata: a\n\ndata: b\n\nretry: 20\nretry: nope\ndata: c\n\n"
    assert decode_everyhow(body) == [ev(data="a", retry=10), ev(data="b"), ev(data="c", retry=20)]


# --------------------------------------------------------------------------------------------
# Line ends, BOM, UTF-8 splits


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_ends(eol: bytes) -> None:
    body = eol.join([b"event: output", b"id: 1", b"data: a", b"data: b", b"", b"data: c", b"", b""])
    assert decode_everyhow(body) == [ev("output", "a\nb", "1"), ev("", "c")]


def test_mixed_line_ends() -> None:
    body = b"event: output\r\nid: 1\rdata: a\ndata: b\r\n\rdata: c\n\r\n: x\r\rdata: d\r\r"
    assert decode_everyhow(body) == [ev("output", "a\nb", "1"), ev("", "c"), ev("", "d")]


def test_cr_at_chunk_boundary_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # the LF completes the CRLF: no blank line yet
    assert decoder.feed(b"\r") == [ev(data="a")]
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\r") == [ev(data="b")]


def test_cr_then_partial_utf8_then_lf() -> None:
    # The chunk after the CR decodes to nothing yet; the CR must stay remembered.
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n\r\ndata: \xc3") == [ev(data="a")]
    assert decoder.feed(b"\xa9\r") == []
    assert decoder.feed(b"\n\r\n") == [ev(data="é")]


def test_cr_cr_is_a_blank_line() -> None:
    assert decode(one_byte_chunks(b"data: a\r\r")) == [ev(data="a")]
    assert decode([b"data: a\r", b"\r"]) == [ev(data="a")]


def test_bom_is_stripped_once() -> None:
    bom = b"\xef\xbb\xbf"
    assert decode_everyhow(bom + b"data: a\n\n") == [ev(data="a")]
    # A second BOM is part of the line: the field name "\ufeffdata" is unknown.
    assert decode_everyhow(bom + bom + b"data: a\n\ndata: b\n\n") == [ev(data="b")]
    # A BOM later in the stream is ordinary text.
    assert decode_everyhow(b"data: a\n\n" + bom + b"data: b\n\n") == [ev(data="a")]
    assert decode_everyhow(b"data: " + bom + b"x\n\n") == [ev(data="\ufeffx")]


def test_bom_split_across_chunks() -> None:
    assert decode([b"\xef", b"\xbb", b"\xbfdata: a\n\n"]) == [ev(data="a")]
    assert decode([b"\xef\xbb", b"\xbf", b"data: a\n\n"]) == [ev(data="a")]


def test_bom_prefix_that_is_not_a_bom() -> None:
    assert decode_everyhow(b"\xef\xbbdata: a\n\ndata: b\n\n") == [ev(data="b")]
    assert decode([b"\xef", b"data: a\n\n"]) == []  # "\ufffddata" is an unknown field
    assert decode([b"\xef", b"\n", b"data: a\n\n"]) == [ev(data="a")]


def test_bom_is_stripped_again_after_reset() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb\xbfdata: a\n\n") == [ev(data="a")]
    decoder.reset()
    assert decoder.feed(b"\xef\xbb") == []
    assert decoder.feed(b"\xbfdata: b\n\n") == [ev(data="b")]


@pytest.mark.parametrize("text", ["é", "東京", "😀", "a😀b東c"])
def test_utf8_split_inside_a_character(text: str) -> None:
    body = f"event: output\nid: {text}\ndata: {text}\n\n".encode()
    expected = [ev("output", text, text)]
    for cut in range(len(body) + 1):
        assert decode([body[:cut], body[cut:]]) == expected, cut
    assert decode(one_byte_chunks(body)) == expected


# --------------------------------------------------------------------------------------------
# Dispatch and end of stream


def test_event_without_trailing_blank_line_waits_for_it() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: output\nid: 1\ndata: a\n") == []
    assert decoder.feed(b"data: b\n") == []
    assert decoder.feed(b"\n") == [ev("output", "a\nb", "1")]


def test_trailing_data_at_eof_is_discarded() -> None:
    assert decode([b"data: a\n\ndata: b\n"]) == [ev(data="a")]
    assert decode([b"data: a\n\ndata: b"]) == [ev(data="a")]
    assert decode([b"data: a\n\nevent: output\nid: 2\ndata: b\n"]) == [ev(data="a")]
    assert list(iter_events([b"data: a\n\ndata: b\n"])) == [ev(data="a")]


def test_reset_discards_unfinished_line_and_event_but_keeps_id_and_retry() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 100\nid: 1\ndata: a\n\nevent: output\nid: 2\ndata: partial\ndat")
    decoder.reset()
    assert (decoder.last_event_id, decoder.retry) == ("1", 100)
    # The new connection starts clean: nothing of the old event or line leaks in.
    assert decoder.feed(b"a: b\n\nevent: output\nid: 3\ndata: c\n\n") == [ev("output", "c", "3")]


def test_reset_after_cr_forgets_it() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\r")
    decoder.reset()
    # A leading LF on the new connection is a line end of its own (a blank line).
    assert decoder.feed(b"\ndata: b\n\n") == [ev(data="b")]


def test_reset_drops_a_partial_utf8_character() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: \xe6\x9d")
    decoder.reset()
    assert decoder.feed(b"data: x\n\n") == [ev(data="x")]


def test_close_is_reset() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n")
    decoder.close()
    assert decoder.feed(b"\n") == []


def test_iter_events_resets_the_decoder() -> None:
    decoder = SSEDecoder(last_event_id="0")
    events = list(decoder.iter_events([b"id: 1\ndata: a\n\n", b"data: unfinished\n"]))
    assert events == [ev("", "a", "1")]
    assert decoder.feed(b"\n") == []  # the unfinished event was dropped
    assert decoder.last_event_id == "1"


async def test_aiter_events() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"event: output\nid: 1\nda", b"ta: a\n", b"\ndata: tail\n"):
            yield chunk

    assert [e async for e in aiter_events(chunks())] == [ev("output", "a", "1")]
    decoder = SSEDecoder()
    assert [e async for e in decoder.aiter_events(chunks())] == [ev("output", "a", "1")]
    assert decoder.last_event_id == "1"


# --------------------------------------------------------------------------------------------
# The fast path (usual Replicate blocks) and the general path must agree


def test_usual_block_continuing_an_unfinished_event() -> None:
    # The regular block must not be taken alone: it completes the event begun before it.
    for prefix in (b"data: first\n", b"retry: 5\n", b"id: 0\n", b"event: x\n"):
        body = prefix + b"event: output\nid: 1\ndata: a\n\nevent: output\nid: 2\ndata: b\n\n"
        expected, _, _ = reference(body)
        assert decode_everyhow(body) == expected, prefix


def test_usual_blocks_between_other_lines() -> None:
    body = (
        b": hi\n\nevent: output\nid: 1\ndata: a\n\n: keep-alive\n\n"
        b"event: output\nid: 2\ndata: b\n\ndata: x\ndata: y\n\n"
        b"event: output\nid: 3\ndata: c\n\nevent: output\nid: 4\ndata: d\ndata: e\n\n"
        b"event: output\nid: 5\ndata: f\n\nid: 6\n\nevent: output\nid: 7\ndata: g\n\n"
    )
    decoder = SSEDecoder()
    events = decode_everyhow(body)
    assert events == decode([body], decoder)
    assert events == [
        ev("output", "a", "1"),
        ev("output", "b", "2"),
        ev("", "x\ny"),
        ev("output", "c", "3"),
        ev("output", "d\ne", "4"),
        ev("output", "f", "5"),
        ev("output", "g", "7"),
    ]
    assert decoder.last_event_id == "7"


def test_lines_that_look_like_usual_blocks_inside_values() -> None:
    body = b"data: event: output\ndata: id: 1\ndata: data: x\n\nevent: output\nid: 2\ndata: y\n\n"
    assert decode_everyhow(body) == [
        ev("", "event: output\nid: 1\ndata: x"),
        ev("output", "y", "2"),
    ]


def test_simple_blocks_without_event_or_id() -> None:
    decoder = SSEDecoder()
    body = (
        b"data: a\n\nid: 1\ndata: b\n\nevent: logs\ndata: c\n\n"
        b"event: output\nid: 2\ndata: d\n\ndata: e\n\nevent:\nid:\ndata:\n\n"
    )
    events = decode([body], decoder)
    assert events == [
        ev("", "a"),
        ev("", "b", "1"),
        ev("logs", "c"),
        ev("output", "d", "2"),
        ev("", "e"),
        ev("", "", ""),
    ]
    assert decoder.last_event_id == ""  # the last block had an empty id
    assert decode_everyhow(body) == events


def test_last_event_id_with_id_less_simple_blocks_at_the_end() -> None:
    decoder = SSEDecoder(last_event_id="0")
    body = b"data: a\n\nid: 5\ndata: b\n\ndata: c\n\nevent: done\ndata: {}\n\n"
    assert decode([body], decoder) == [
        ev("", "a"),
        ev("", "b", "5"),
        ev("", "c"),
        ev("done", "{}"),
    ]
    assert decoder.last_event_id == "5"
    decoder = SSEDecoder(last_event_id="0")
    assert decode([b"data: a\n\nevent: x\ndata: b\n\n"], decoder) == [ev("", "a"), ev("x", "b")]
    assert decoder.last_event_id == "0"


def test_usual_blocks_around_an_id_less_block() -> None:
    # A block without id between Replicate's usual ones (e.g. a logs event).
    body = b"".join(
        b"event: logs\ndata: log %d\n\n" % i
        if i % 3 == 0
        else b"event: output\nid: %d\ndata: t%d\n\n" % (i, i)
        for i in range(300)
    )
    expected, last_id, _ = reference(body)
    decoder = SSEDecoder()
    assert decode([body[i : i + 4096] for i in range(0, len(body), 4096)], decoder) == expected
    assert decoder.last_event_id == last_id == "299"
    assert decode_everyhow(body) == expected


def test_stream_that_changes_shape_midway() -> None:
    # Chunks the fast path does not fit, then chunks it does, then again not.
    odd = b"".join(b"id: %d\nevent: output\ndata: o%d\n: c\n\n" % (i, i) for i in range(200))
    usual = b"".join(b"event: output\nid: u%d\ndata: u%d\n\n" % (i, i) for i in range(400))
    body = odd + usual + odd + usual
    expected, last_id, _ = reference(body)
    assert len(expected) == 1200
    for size in (100, 1000, 4096):
        decoder = SSEDecoder()
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert decode(chunks, decoder) == expected, size
        assert decoder.last_event_id == last_id == "u399"


# --------------------------------------------------------------------------------------------
# Property-style: generated streams, every chunking, against the reference


_LINES = [
    "event: output",
    "event: logs",
    "event:done",
    "event:",
    "event",
    "event:  spaced",
    "data: token",
    "data:  two",
    "data:",
    "data",
    "data: é東😀",
    "data: a:b: c",
    "id: 1690212292:1",
    "id:",
    "id",
    "id: bad\0id",
    "retry: 1000",
    "retry: 1s",
    "retry: +1",
    "retry:",
    ": comment",
    ":",
    "unknown: x",
    "Data: x",
    "",
    "",
    "",
    "\ufeffdata: bom",
]


_BLOCKS = [
    "event: output\nid: 1690212292:{n}\ndata: {data}\n\n",
    "event: output\nid: 1690212292:{n}\ndata: {data}\n\n",
    "event: logs\ndata: {data}\n\n",
    "id: {n}\ndata: {data}\n\n",
    "data: {data}\n\n",
    "event: output\nid: {n}\ndata: {data}\ndata: more\n\n",
]


def _generated_stream(rng: random.Random) -> bytes:
    parts: list[str] = []
    if rng.random() < 0.3:
        parts.append("\ufeff")
    for _ in range(rng.randint(1, 60)):
        if rng.random() < 0.5:
            n = rng.randint(0, 99)
            block = rng.choice(_BLOCKS).format(
                n=n, data=rng.choice(["", " ", "x", " é", ": not a comment"])
            )
            if rng.random() < 0.3:
                block = block.replace("\n", rng.choice(["\r\n", "\r"]))
            parts.append(block)
        else:
            parts.append(rng.choice(_LINES) + rng.choice(["\n", "\n", "\r\n", "\r"]))
    if rng.random() < 0.5:
        parts.append(rng.choice(_LINES))  # maybe an unterminated last line
    return "".join(parts).encode()


@pytest.mark.parametrize("seed", range(60))
def test_generated_streams_match_the_reference_in_every_chunking(seed: int) -> None:
    rng = random.Random(seed)
    body = _generated_stream(rng)
    expected, last_id, retry = reference(body)
    chunkings = {
        "whole": [body],
        "bytes": one_byte_chunks(body),
        "random-small": random_chunks(body, rng, 5),
        "random-large": random_chunks(body, rng, 100),
    }
    for name, chunks in chunkings.items():
        decoder = SSEDecoder()
        assert decode(chunks, decoder) == expected, name
        assert (decoder.last_event_id, decoder.retry) == (last_id, retry), name


def test_long_replicate_stream_in_every_chunking() -> None:
    rng = random.Random(1234)
    words = ["Hello", " world", " é", " 東京", " 😀", "", " ", "\t"]
    parts = []
    for i in range(600):
        if i % 50 == 49:
            parts.append(f"event: logs\nid: 1690212292:{i}\ndata: step {i}\n\n")
        else:
            parts.append(f"event: output\nid: 1690212292:{i}\ndata: {rng.choice(words)}\n\n")
    parts.append("event: done\ndata: {}\n\n")
    body = "".join(parts).encode()
    expected, last_id, _ = reference(body)
    assert len(expected) == 601
    events = decode_everyhow(body)
    assert events == expected
    decoder = SSEDecoder()
    decode([body], decoder)
    assert decoder.last_event_id == last_id == "1690212292:599"


def test_large_data_line_in_small_chunks() -> None:
    payload = "x" * 200_000 + "é"
    body = f"event: output\ndata: {payload}\n\n".encode()
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    assert decode(chunks) == [ev("output", payload)]


# --------------------------------------------------------------------------------------------
# SeenIds


def test_seen_ids_drops_replays_but_never_empty_ids() -> None:
    seen = SeenIds()
    assert seen.add("1:0") is True
    assert seen.add("1:1") is True
    assert seen.add("1:0") is False
    assert seen.add("") is True
    assert seen.add("") is True
    assert "1:1" in seen
    assert "" not in seen
    assert len(seen) == 2


def test_seen_ids_after_a_reconnect_replay() -> None:
    decoder = SSEDecoder()
    seen = SeenIds()
    first = decoder.feed(b"event: output\nid: 1\ndata: a\n\nevent: output\nid: 2\ndata: b\n\n")
    decoder.reset()
    replay = decoder.feed(
        b"event: output\nid: 2\ndata: b\n\nevent: output\nid: 3\ndata: c\n\nevent: done\ndata: {}\n\n"
    )
    delivered = [e for e in first + replay if seen.add(e.id)]
    assert [e.data for e in delivered] == ["a", "b", "c", "{}"]
