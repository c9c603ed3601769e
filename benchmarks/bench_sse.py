"""Micro-benchmark of the SSE decoder.

One Replicate-like event stream (``event: output`` tokens with ids, some
``logs`` events, a final ``event: done``) is served from memory through
``httpx.MockTransport`` in 4 KiB chunks, and each contender consumes
``response.iter_bytes()``:

* ``floor``: merely splitting the bytes into lines (``bytes.split`` with a carry);
* ``httpx iter_lines``: httpx's own line splitter (for reference);
* ``httpx-sse``: ``httpx_sse.EventSource(response).iter_sse()``;
* ``ours``: :class:`replicate._sse.SSEDecoder`;
* ``replicate 1.0.7``: its public ``Prediction.stream()`` against a MockTransport
  serving the same bytes, run in its own venv (``/tmp/v107/bin/python``) as a
  black box.

Rates are events per second (events in the stream / wall time, best of N runs).
Run ``python benchmarks/bench_sse.py [--quick]`` for a table; ``run(quick)``
returns the figures as a dict.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

CHUNK_SIZE = 4096
STREAM_URL = "https://stream.replicate.test/v1/streams/p1"
V107_PYTHON = "/tmp/v107/bin/python"

_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "he",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "I",
    "at",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "naïve",
    "café",
    "über",
    "Straße",
    "東京",
    "ümlaut",
    "😀",
    "façade",
]


def make_stream(n_events: int = 20_000, seed: int = 1234) -> bytes:
    """Build a Replicate-like SSE body with exactly ``n_events`` events (the last is ``done``)."""
    rng = random.Random(seed)
    parts: list[str] = []
    for i in range(n_events - 1):
        if i % 50 == 49:
            parts.append(
                f"event: logs\nid: 1690212292:{i}\ndata: step {i}: "
                f"{rng.choice(_WORDS)} {rng.randint(0, 10**6)}\n\n"
            )
        else:
            token = rng.choice(_WORDS)
            if rng.random() < 0.8:
                token = " " + token
            parts.append(f"event: output\nid: 1690212292:{i}\ndata: {token}\n\n")
    parts.append("event: done\ndata: {}\n\n")
    return "".join(parts).encode("utf-8")


class _Chunks(httpx.SyncByteStream):
    """A response body served from memory in fixed-size chunks."""

    def __init__(self, body: bytes, size: int) -> None:
        self._body = body
        self._size = size

    def __iter__(self) -> Iterator[bytes]:
        body, size = self._body, self._size
        for i in range(0, len(body), size):
            yield body[i : i + size]


def _client(body: bytes) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_Chunks(body, CHUNK_SIZE),
        )

    return httpx.Client(transport=httpx.MockTransport(handler))


def _floor(response: httpx.Response) -> int:
    lines = 0
    carry = b""
    for chunk in response.iter_bytes():
        parts = (carry + chunk).split(b"\n")
        carry = parts.pop()
        lines += len(parts)
    return lines


def _iter_lines(response: httpx.Response) -> int:
    lines = 0
    for _ in response.iter_lines():
        lines += 1
    return lines


def _httpx_sse(response: httpx.Response) -> int:
    from httpx_sse import EventSource

    n = 0
    for _ in EventSource(response).iter_sse():
        n += 1
    return n


def _ours(response: httpx.Response) -> int:
    from replicate._sse import SSEDecoder

    decoder = SSEDecoder()
    feed = decoder.feed
    n = 0
    for chunk in response.iter_bytes():
        for _ in feed(chunk):
            n += 1
    decoder.reset()
    return n


def _time_once(client: httpx.Client, consume: Callable[[httpx.Response], int]) -> float:
    t0 = time.perf_counter()
    with client.stream("GET", STREAM_URL) as response:
        consume(response)
    return time.perf_counter() - t0


# Run in replicate 1.0.7's venv: its public API only (black box).
_V107_SCRIPT = r"""
import json, sys, time
import httpx
from replicate.client import Client

body = open(sys.argv[1], "rb").read()
repeats = int(sys.argv[2])
size = int(sys.argv[3])
stream_url = sys.argv[4]

class Chunks(httpx.SyncByteStream):
    def __iter__(self):
        for i in range(0, len(body), size):
            yield body[i : i + size]

prediction = {
    "id": "p1", "model": "a/b", "version": "v", "status": "starting", "input": {},
    "output": None, "logs": "", "error": None, "created_at": "2023-01-01T00:00:00Z",
    "urls": {"get": "https://api.replicate.com/v1/predictions/p1",
             "cancel": "https://api.replicate.com/v1/predictions/p1/cancel",
             "stream": stream_url},
}

def handler(request):
    if request.url.host == httpx.URL(stream_url).host:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Chunks())
    return httpx.Response(200, json=prediction)

client = Client(api_token="bench-token", transport=httpx.MockTransport(handler))
pred = client.predictions.get("p1")
best = float("inf")
count = 0
for _ in range(repeats):
    t0 = time.perf_counter()
    count = 0
    for _ev in pred.stream():
        count += 1
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds": best, "events": count}))
"""


def _v107(body: bytes, repeats: int) -> tuple[float, int] | None:
    if not os.path.exists(V107_PYTHON):
        return None
    with tempfile.NamedTemporaryFile(suffix=".sse", delete=False) as f:
        f.write(body)
        path = f.name
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        proc = subprocess.run(
            [
                V107_PYTHON,
                "-I",
                "-c",
                _V107_SCRIPT,
                path,
                str(repeats),
                str(CHUNK_SIZE),
                STREAM_URL,
            ],
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
            env=env,
            timeout=600,
            check=False,
        )
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        print(f"replicate 1.0.7 run failed:\n{proc.stderr}", file=sys.stderr)
        return None
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), int(result["events"])


def run(quick: bool = False) -> dict[str, Any]:
    """Run every contender on one stream; return rates (events/s) and ratios.

    ``quick`` uses 2,000 events and 5 repeats instead of 20,000 events and 15 repeats.
    """
    n_events = 2_000 if quick else 20_000
    repeats = 5 if quick else 15
    body = make_stream(n_events)

    # Correctness first: our events must equal httpx-sse's on these bytes (httpx-sse
    # repeats the last id on id-less events, as the standard does; we send "").
    from httpx_sse import EventSource

    from replicate._sse import SSEDecoder

    with _client(body) as client:
        with client.stream("GET", STREAM_URL) as response:
            theirs = [(e.event, e.data, e.id) for e in EventSource(response).iter_sse()]
            theirs[-1] = (theirs[-1][0], theirs[-1][1], "")
        with client.stream("GET", STREAM_URL) as response:
            decoder = SSEDecoder()
            ours = [(e.event, e.data, e.id) for c in response.iter_bytes() for e in decoder.feed(c)]
        if len(ours) != n_events or ours != theirs[: len(ours)]:
            raise AssertionError("our decoder disagrees with httpx-sse on the benchmark stream")

        results: dict[str, Any] = {
            "events": n_events,
            "bytes": len(body),
            "chunk_size": CHUNK_SIZE,
            "repeats": repeats,
        }
        contenders: dict[str, Callable[[httpx.Response], int]] = {
            "floor": _floor,
            "httpx iter_lines": _iter_lines,
            "httpx-sse": _httpx_sse,
            "ours": _ours,
        }
        # Interleave the contenders and keep each one's best time, so that a slow
        # spell of the machine does not favour one of them.
        best = dict.fromkeys(contenders, float("inf"))
        for _ in range(repeats):
            for name, consume in contenders.items():
                best[name] = min(best[name], _time_once(client, consume))
        rates: dict[str, float | None] = {name: n_events / t for name, t in best.items()}

    v107 = _v107(body, repeats)
    if v107 is not None:
        seconds, count = v107
        rates["replicate 1.0.7"] = n_events / seconds
        results["replicate 1.0.7 events yielded"] = count
    else:
        rates["replicate 1.0.7"] = None

    ours_rate = rates["ours"]
    assert ours_rate is not None
    results["rates"] = rates
    results["ours / x"] = {
        name: (ours_rate / rate if rate else None) for name, rate in rates.items() if name != "ours"
    }
    return results


def _main() -> None:
    quick = "--quick" in sys.argv[1:]
    results = run(quick)
    print(
        f"SSE decode: {results['events']:,} events, {results['bytes']:,} bytes, "
        f"{results['chunk_size']} B chunks, best of {results['repeats']}"
    )
    print(f"{'contender':<20} {'events/s':>14} {'ours / it':>10}")
    for name, rate in results["rates"].items():
        ratio = results["ours / x"].get(name)
        rate_s = f"{rate:,.0f}" if rate else "n/a"
        ratio_s = f"{ratio:.2f}x" if ratio else ("-" if name == "ours" else "n/a")
        print(f"{name:<20} {rate_s:>14} {ratio_s:>10}")


if __name__ == "__main__":
    _main()
