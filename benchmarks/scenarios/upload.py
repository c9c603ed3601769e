"""Scenario: ``client.files.create(path)`` of a large file.

A temporary file of 192 MiB (32 MiB with ``--quick``) is written first. The client's transport
reads the request body in chunks and discards it (like a server that streams the upload to
storage), then answers 201 with a file JSON from the shared recordings. ``httpx``: the same
multipart upload with ``httpx.Client.post(files={"content": (name, fh, type)})``.
After a small warm-up upload, each round measures the throughput (MiB/s, by the process's CPU
time; wall-clock figures are reported too) and the peak RSS growth of the upload. Figures: best
throughput, worst memory growth.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import httpx
from _common import (
    BASE_URL,
    JSON_HEADERS,
    MIB,
    TOKEN,
    MemoryProbe,
    check,
    emit,
    environment,
    load_body,
    parse_args,
)

FILE_BODY = load_body("file.json")


class ConsumingTransport(httpx.BaseTransport):
    """Reads each request body in chunks, discards it, and answers like ``POST /v1/files``."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.max_chunk = 0
        self.content_types: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        n = 0
        for chunk in request.stream:  # type: ignore[union-attr]
            n += len(chunk)
            self.max_chunk = max(self.max_chunk, len(chunk))
        self.received.append(n)
        self.content_types.append(request.headers.get("content-type", ""))
        if request.method == "POST" and request.url.path == "/v1/files":
            return httpx.Response(201, content=FILE_BODY, headers=JSON_HEADERS)
        return httpx.Response(404, json={"detail": "not found"})


def write_file(path: str, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as fh:
        for _ in range(size // MIB):
            fh.write(block)


def main() -> None:
    args = parse_args(__doc__ or "")
    size = (32 if args.quick else 192) * MIB
    rounds = 2 if args.quick else 5
    transport = ConsumingTransport()
    workdir = tempfile.mkdtemp(prefix="replicate-bench-")
    big = os.path.join(workdir, "upload.bin")
    small = os.path.join(workdir, "warmup.bin")
    try:
        write_file(big, size)
        write_file(small, MIB)
        if args.impl == "httpx":
            http = httpx.Client(
                base_url=BASE_URL,
                transport=transport,
                headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "benchmark"},
            )

            def upload(path: str) -> Any:
                with open(path, "rb") as fh:
                    files = {"content": (os.path.basename(path), fh, "application/octet-stream")}
                    response = http.post("/v1/files", files=files)
                response.raise_for_status()
                return response.json()["id"]
        else:
            import replicate

            client = replicate.Client(api_token=TOKEN, transport=transport)

            def upload(path: str) -> Any:
                return client.files.create(path).id

        check(bool(upload(small)), "warm-up upload returned no id")
        check(transport.received[-1] > MIB, "warm-up body shorter than the file")
        throughputs: list[float] = []
        wall_throughputs: list[float] = []
        growths: list[float] = []
        exact = True
        for _ in range(rounds):
            probe = MemoryProbe()
            with probe.measure():
                start = time.perf_counter()
                cpu0 = time.process_time()
                file_id = upload(big)
                cpu = time.process_time() - cpu0
                elapsed = time.perf_counter() - start
            check(bool(file_id), "upload returned no id")
            check(transport.received[-1] > size, "request body shorter than the file")
            throughputs.append(size / MIB / max(cpu, 1e-9))
            wall_throughputs.append(size / MIB / elapsed)
            if probe.growth_kib is not None:
                growths.append(probe.growth_kib / 1024)
            exact = exact and probe.exact
    finally:
        for path in (big, small):
            if os.path.exists(path):
                os.unlink(path)
        os.rmdir(workdir)
    result = environment(args.impl)
    result.update(
        scenario="upload",
        metric="mib_per_s",
        # One thread, reading a cached file and handing chunks to an in-process transport: CPU
        # time (user + system) is the robust clock here, as in the other CPU-bound scenarios.
        value=max(throughputs),
        clock="cpu",
        rounds=[round(t, 1) for t in throughputs],
        wall_value=max(wall_throughputs),
        wall_rounds=[round(t, 1) for t in wall_throughputs],
        mem_growth_mib=max(growths) if growths else None,
        mem_growth_rounds_mib=[round(g, 2) for g in growths],
        mem_exact=exact,
        size_mib=size // MIB,
        body_bytes=transport.received[-1],
        max_body_chunk=transport.max_chunk,
        content_type=transport.content_types[-1].split(";")[0],
    )
    emit(result)


if __name__ == "__main__":
    main()
