"""Bundled demo models: plain Python callables that need no Cog and no network."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from .capture import prediction_tempdir
from .registry import Registry
from .schema import AsyncConcatenateIterator, Input

HELLO_WORLD_VERSIONS = (
    "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",  # older
    "9dcd6d78e7c6560c340d916fe32e9f24aabfa331e5cce95fe31f77fb03121426",  # latest
)


def hello_world(text: str = Input(description="Text to prefix with 'hello '")) -> str:
    """``hello {text}``."""
    return f"hello {text}"


async def stream_text(  # type: ignore[misc]
    prompt: str = Input(description="Prompt whose words are streamed back"),
    max_tokens: int = Input(default=32, ge=1, le=1000, description="Number of tokens to generate"),
    delay_ms: int = Input(
        default=50, ge=0, le=5000, description="Delay between tokens in milliseconds"
    ),
) -> AsyncConcatenateIterator[str]:
    """Stream the prompt's words back, cycling, one token at a time (a cancel stops it at
    its next wait)."""
    words = prompt.split() or ["..."]
    print(f"streaming {max_tokens} tokens")
    for i in range(max_tokens):
        if i and delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        word = words[i % len(words)]
        yield word if i == 0 else f" {word}"
    print("done streaming")


def _png(rgb: tuple[int, int, int], size: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * size
    raw = row * size
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def make_file(
    text: str = Input(description="Text that picks the colour (png) or the content (txt)"),
    format: Literal["png", "txt"] = Input(default="png", description="Output format"),
    size: int = Input(default=64, ge=1, le=512, description="Image side in pixels"),
) -> Path:
    """A solid PNG square coloured from a hash of ``text``, or a text file."""
    out_dir = prediction_tempdir()  # removed when the prediction ends
    if format == "txt":
        path = out_dir / "output.txt"
        path.write_text(text)
        return path
    digest = hashlib.sha256(text.encode()).digest()
    path = out_dir / "output.png"
    path.write_bytes(_png((digest[0], digest[1], digest[2]), size))
    print(f"drew a {size}x{size} png")
    return path


def _image_size(head: bytes) -> tuple[str, int, int] | None:
    """``(media type, width, height)`` from the first bytes of a PNG, GIF or JPEG file."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return "image/png", width, height
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return "image/gif", width, height
    if head[:2] == b"\xff\xd8":  # JPEG: walk the segments to the first start-of-frame
        pos = 2
        while pos + 9 <= len(head) and head[pos] == 0xFF:
            marker = head[pos + 1]
            (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
                height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
                return "image/jpeg", width, height
            pos += 2 + length
        return "image/jpeg", 0, 0
    return None


def file_info(
    file: Path = Input(description="Any file: an image (PNG, GIF, JPEG) or a text file"),
) -> dict[str, Any]:
    """The file's name, size and type; width and height of images; lines and words of text."""
    data = Path(file).read_bytes()
    info: dict[str, Any] = {"name": Path(file).name, "size": len(data)}
    image = _image_size(data[:65536])
    if image is not None:
        info["type"], info["width"], info["height"] = image
        print(f"{info['name']}: {info['type']} {info['width']}x{info['height']}")
        return info
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        info["type"] = "application/octet-stream"
        print(f"{info['name']}: {len(data)} bytes of binary data")
        return info
    info.update(type="text/plain", lines=len(text.splitlines()), words=len(text.split()))
    print(f"{info['name']}: {info['lines']} lines, {info['words']} words")
    return info


def fail(
    message: str = Input(default="something went wrong", description="The error message"),
    after_ms: int = Input(default=0, ge=0, le=60000, description="Delay before failing"),
    fail_in_setup: bool = Input(default=False, description="Fail as if setup() had failed"),
    cancel_event: threading.Event | None = None,
) -> None:
    """Log two lines, then fail with ``message``."""
    if fail_in_setup:
        raise RuntimeError(f"setup failed: {message}")
    print("starting")
    print("about to fail")
    if after_ms and cancel_event is not None and cancel_event.wait(after_ms / 1000):
        return
    raise RuntimeError(message)


def sleep(
    seconds: float = Input(default=10, ge=0, le=600, description="How long to sleep"),
    tick: float = Input(default=1, ge=0.1, le=10, description="Seconds between log lines"),
    cancel_event: threading.Event | None = None,
) -> str:
    """Sleep, logging ``tick i/n``; cancellable at any tick."""
    n = max(1, int(-(-seconds // tick)))
    end = time.monotonic() + seconds
    for i in range(1, n + 1):
        remaining = end - time.monotonic()
        wait = max(0.0, min(tick, remaining))
        if cancel_event is not None and cancel_event.wait(wait):
            return f"slept {seconds:g}s"
        print(f"tick {i}/{n}")
    return f"slept {seconds:g}s"


def hello_trainable(text: str = Input(description="Text to greet")) -> str:
    """``hello {text}`` (trained versions use their own greeting)."""
    return f"hello {text}"


DEMO_MODELS: list[dict[str, Any]] = [
    {
        "model": "replicate/hello-world",
        "fn": hello_world,
        "description": "A tiny model that says hello",
        "readme": "# hello-world\n\nPrefixes the input text with `hello `.\n",
        "version_id": HELLO_WORLD_VERSIONS[1],
        "extra_version_ids": [HELLO_WORLD_VERSIONS[0]],
        "example": ({"text": "world"}, "hello world"),
        "tags": ["demo", "text"],
        "inline": True,  # a string format: no model thread needed
    },
    {
        "model": "local-demo/stream-text",
        "fn": stream_text,
        "description": "Streams the prompt's words back token by token",
        "readme": "# stream-text\n\nToken streaming over SSE.\n",
        "example": (
            {"prompt": "hello there", "max_tokens": 3, "delay_ms": 0},
            ["hello", " there", " hello"],
        ),
        "tags": ["demo", "streaming", "language"],
        "inline": True,  # waits only by awaiting: a task on the server's loop
        "concurrency": 64,
    },
    {
        "model": "local-demo/make-file",
        "fn": make_file,
        "description": "Draws a PNG (or writes a text file)",
        "example": ({"text": "hello", "format": "png", "size": 8}, None),
        "tags": ["demo", "image", "file"],
    },
    {
        "model": "local-demo/file-info",
        "fn": file_info,
        "description": "Tells a file's size and type, an image's width and height, a text's words",
        "readme": (
            "# file-info\n\nTakes one **file** input (uploaded through the files API, or a URL) "
            "and returns its `name`, `size` and `type`, with `width` and `height` for PNG, GIF "
            "and JPEG images and `lines` and `words` for text.\n\n"
            "```bash\nreplicate run --local local-demo/file-info -i file=@photo.png\n```\n"
        ),
        "example": (
            {"file": "data:text/plain;base64,aGVsbG8gd29ybGQ="},
            {"name": "input.txt", "size": 11, "type": "text/plain", "lines": 1, "words": 2},
        ),
        "tags": ["demo", "file"],
    },
    {
        "model": "local-demo/fail",
        "fn": fail,
        "description": "Always fails",
        "example": ({"message": "something went wrong"}, None),
        "tags": ["demo"],
    },
    {
        "model": "local-demo/sleep",
        "fn": sleep,
        "description": "Sleeps, for wait, cancel and deadline tests",
        "example": ({"seconds": 0}, "slept 0s"),
        "tags": ["demo"],
    },
    {
        "model": "local-demo/hello-trainable",
        "fn": hello_trainable,
        "description": "Greets; trainings change the greeting",
        "example": ({"text": "world"}, "hello world"),
        "tags": ["demo", "training"],
    },
]


def iter_demo_models() -> Iterator[dict[str, Any]]:
    """The demo model definitions."""
    yield from DEMO_MODELS


def register_demo_models(registry: Registry) -> dict[str, str]:
    """Register every demo model; returns ``{owner/name: version id}``."""
    out: dict[str, str] = {}
    for spec in DEMO_MODELS:
        out[spec["model"]] = registry.register(
            spec["model"],
            spec["fn"],
            description=spec.get("description"),
            readme=spec.get("readme"),
            tags=spec.get("tags"),
            version_id=spec.get("version_id"),
            extra_version_ids=spec.get("extra_version_ids"),
            source="demo",
            inline=spec.get("inline", False),
            concurrency=spec.get("concurrency", 1),
        )
    return out
